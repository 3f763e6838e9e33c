"""`python -m backends.torch_pinn.infer --bundle B --data-file F --output-dir O` (docs/spec.md §13).

An entry point only; the work is in stitch.py and bundle.py.
"""

import sys

if __name__ == "__main__":
    from backends.torch_pinn.cli import infer_main

    sys.exit(infer_main())
