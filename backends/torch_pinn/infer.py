"""`python -m backends.torch_pinn.infer --bundle B --data-file F --output-dir O` (docs/spec.md §13).

Entry point only; the work is backends.torch_pinn.cli.infer_main. Counterpart of
backends/tf_pinn/infer.py.
"""

if __name__ == "__main__":
    import sys

    from backends.torch_pinn.cli import infer_main

    sys.exit(infer_main())
