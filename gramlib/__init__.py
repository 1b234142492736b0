"""gramlib: GRAM spatial audio representation models and the Nat-HEAR benchmark.

One module per concept; see DESIGN.md for the pipeline. Importing the package is cheap: heavy
modules (torch, pyroomacoustics) load only when their module is imported.
"""
__version__ = "0.1.0"
