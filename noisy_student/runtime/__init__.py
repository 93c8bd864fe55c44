"""How the project runs, below every other package (docs/architecture.md).

* `errors.py`    NoisyStudentError, the one base class of user errors;
* `entry.py`     how every binary starts: flags, one-line errors, exit status 2;
* `progress.py`  the progress lines of long loops (absl in a binary, stderr elsewhere);
* `quiet.py`     TensorFlow's first import without its C++ start-up banner;
* `packages.py`  the check that `data`, `efficientnet` and `noisy_student` are ours;
* `temp_names.py` the hidden temporary names every atomic writer uses.

Standard library and absl only. `noisy_student/__init__.py` runs the package
check when any module of the project is first imported; `entry.py` installs
the quiet filter (the binaries import it first).
"""
