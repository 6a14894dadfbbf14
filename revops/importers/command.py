"""`revops import charge-lnd FILE [-o DIR]`: write the policy folder, check it as reload would."""

from __future__ import annotations

import sys
from pathlib import Path

from revops.diagnostics import DiagnosticError

EXIT_OK, EXIT_ERRORS, EXIT_LINT = 0, 1, 3


def cmd_import(args) -> int:
    """Exit 0 when everything was imported, 3 when some keys were not (listed on stderr), 1 on error."""
    from revops.importers.charge_lnd import import_charge_lnd
    from revops.policy.reload import build
    source = Path(args.file)
    out = Path(args.output) if args.output else Path(f"{source.stem}-policy")
    if out.exists() and any(out.iterdir()):
        print(f"import: {out} exists and is not empty; choose another folder with -o", file=sys.stderr)
        return EXIT_ERRORS
    try:
        imported = import_charge_lnd(source)
    except ValueError as err:
        print(f"import: {err}", file=sys.stderr)
        return EXIT_ERRORS
    out.mkdir(parents=True, exist_ok=True)
    for name, text in imported.files.items():
        (out / name).write_text(text, encoding="utf-8")
    try:
        prepared = build(out)  # what `revops check` and revenue-reload run
    except DiagnosticError as err:  # a bug of the importer: say so, with the located errors
        print(f"import: the generated policy in {out} does not check:\n{err}", file=sys.stderr)
        return EXIT_ERRORS
    for note in imported.info:
        print(f"note: {note}", file=sys.stderr)
    for note in imported.unsupported:
        print(f"not imported: {note}", file=sys.stderr)
    print(f"imported {source} into {out}: {imported.sections} sections, "
          f"{len(prepared.compiled.rules)} rules; `revops check {out}` passes"
          + (f"; {len(imported.unsupported)} item(s) not imported (listed above and in policy.yaml)"
             if imported.unsupported else ""))
    return EXIT_LINT if imported.unsupported else EXIT_OK
