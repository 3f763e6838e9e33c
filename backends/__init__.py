"""The two backends and their shared contract code.

Importing any `backends.*` module first runs this file, which sets the
project's framework environment (backends/common/threads.py: one thread per op
pool, oneDNN off, TensorFlow's C++ logging at errors only) before TensorFlow or
torch can be imported: the command lines (`python -m backends.tf_pinn.train`,
...) then compute as the test suite does and print no framework noise.

Only variables that are unset are set (os.environ.setdefault): a library user
or a shell that sets one on purpose keeps it. A variable set after a framework
was imported has no effect on it, whichever way it was set.
"""

from backends.common.threads import pin_threads

pin_threads()
