"""Packaging hook: the wheel carries grammar/, policies/ and schema/ under revops/_data/.

They live at the top of the repository, where operators look for them; an installed
revops finds them in the package instead (revops/resources.py looks in both places).
"""

import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

DATA_DIRS = ("grammar", "policies", "schema")


class BuildWithData(build_py):
    def run(self):
        super().run()
        here = os.path.dirname(os.path.abspath(__file__))
        for name in DATA_DIRS:
            shutil.copytree(os.path.join(here, name), os.path.join(self.build_lib, "revops", "_data", name),
                            dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))


setup(cmdclass={"build_py": BuildWithData})
