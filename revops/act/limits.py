"""The actuator's hard fee limits: what revops will send to `setchannel`, whatever a policy says.

A policy can decide anything (a clamp-exempt rule's fee skips every floor and ceiling of the
policy), so the last word is here, in code: a fee outside these limits is refused at the
actuator and journaled as an `error` decision with the reason (issue 12, item 9).

- CLN's own range: `fee_proportional_millionths` and `fee_base_msat` are u32 on the wire.
- `MAX_FEE_PPM`: an absolute ceiling of 50,000 ppm (5 %). No routing fee above it makes
  sense on a public channel; it exists to stop a policy bug from publishing one. The option
  `revenue-ops-max-fee-ppm` can lower it (never raise it).
"""

from __future__ import annotations

from typing import Any

U32_MAX = 2**32 - 1
MAX_FEE_PPM = 50_000
MAX_BASE_FEE_MSAT = U32_MAX


def _whole(v: Any) -> bool:
    return type(v) is int


def fee_refusal(fee_ppm: Any, max_fee_ppm: int = MAX_FEE_PPM, base_fee_msat: Any = None) -> str | None:
    """Returns why the actuator refuses to send this fee, or None when it is within the limits."""
    if not _whole(fee_ppm) or fee_ppm < 0:
        return f"refused by the actuator: fee {fee_ppm!r} ppm is not a whole number >= 0"
    if fee_ppm > U32_MAX:
        return f"refused by the actuator: fee {fee_ppm} ppm is beyond CLN's range (u32, at most {U32_MAX})"
    if fee_ppm > max_fee_ppm:
        return (f"refused by the actuator: fee {fee_ppm} ppm is above the hard ceiling of {max_fee_ppm} ppm "
                f"(revenue-ops-max-fee-ppm, at most {MAX_FEE_PPM})")
    if base_fee_msat is not None:
        if not _whole(base_fee_msat) or not 0 <= base_fee_msat <= MAX_BASE_FEE_MSAT:
            return (f"refused by the actuator: base fee {base_fee_msat!r} msat is outside CLN's range "
                    f"(0..{MAX_BASE_FEE_MSAT})")
    return None


def parse_max_fee_ppm(value: Any) -> int:
    """Returns the revenue-ops-max-fee-ppm option as an int in 0..MAX_FEE_PPM; raises ValueError
    with the reason otherwise."""
    try:
        ppm = int(str(value).strip())
    except ValueError:
        raise ValueError(f"revenue-ops-max-fee-ppm must be a whole number of ppm, got {value!r}") from None
    if not 0 <= ppm <= MAX_FEE_PPM:
        raise ValueError(f"revenue-ops-max-fee-ppm must be within 0..{MAX_FEE_PPM} (it can only lower the "
                         f"built-in ceiling), got {ppm}")
    return ppm
