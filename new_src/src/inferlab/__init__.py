"""inferlab: an AI-inference engineering lab.

Importing the package is cheap: nothing here imports torch or triton, so `inferlab --help`
stays fast. Kernels live in `inferlab.kernels`; the learner's lab in `inferlab.lab`.
"""

__version__ = "0.1.0"
