# Only for cffi_modules, which is not a [project] key; everything else is in pyproject.toml.
from setuptools import setup

setup(cffi_modules=["c_kernels/build.py:ffibuilder", "c_kernels/build.py:truth_builder"])
