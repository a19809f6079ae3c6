"""The shipped specs live in `specs/` at the top of the repository (the source of truth). The build copies
them into the package as `archspec/specs/`, so the wheel carries them; `archspec.catalog` finds them there
when installed, and in `specs/` in a checkout or an editable install."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildPyWithSpecs(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):  # an editable install reads specs/ in place
            return
        target = Path(self.build_lib) / "archspec" / "specs"
        self.mkpath(str(target))
        for spec in sorted((HERE / "specs").glob("*.yaml")):
            self.copy_file(str(spec), str(target / spec.name))


setup(cmdclass={"build_py": BuildPyWithSpecs})
