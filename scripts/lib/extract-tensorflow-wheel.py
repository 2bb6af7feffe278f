#!/usr/bin/env python3
"""Extract from a pip TensorFlow wheel what tfjs-node's native addon links and compiles against.

Usage: extract-tensorflow-wheel.py WHEEL DEST

DEST receives lib/libtensorflow_cc.so.2, lib/libtensorflow_framework.so.2 (the TF C and eager C APIs
live in libtensorflow_cc) and include/ with only the headers the addon includes (tensorflow/c/** and
the few tsl/xla headers those pull in), plus VERSION (TensorFlow's version, from the wheel metadata).
Only the standard library is used, so no `unzip` is needed.
"""
import os
import shutil
import sys
import zipfile

LIBRARIES = ("tensorflow/libtensorflow_cc.so.2", "tensorflow/libtensorflow_framework.so.2")
INCLUDE_ROOT = "tensorflow/include/"
# Header prefixes under tensorflow/include/ that tensorflow/c/c_api.h and c/eager/c_api.h reach.
HEADER_PREFIXES = (
    "tensorflow/c/",
    "tensorflow/core/platform/ctstring",
    "tensorflow/tsl/platform/ctstring",
    "tsl/platform/ctstring",
    "xla/tsl/c/",
)


def main(wheel: str, dest: str) -> int:
    lib_dir = os.path.join(dest, "lib")
    os.makedirs(lib_dir, exist_ok=True)
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        missing = [lib for lib in LIBRARIES if lib not in names]
        if missing:
            sys.stderr.write(
                f"{wheel} has no {', '.join(missing)}: this TensorFlow wheel does not ship the C library "
                "tfjs-node needs (TensorFlow >= 2.9 manylinux wheels do; pick one with TF_PIP_SPEC)\n"
            )
            return 2
        for lib in LIBRARIES:
            with z.open(lib) as src, open(os.path.join(lib_dir, os.path.basename(lib)), "wb") as out:
                shutil.copyfileobj(src, out, 16 << 20)
            os.chmod(os.path.join(lib_dir, os.path.basename(lib)), 0o755)
        headers = 0
        for name in names:
            if not name.startswith(INCLUDE_ROOT) or name.endswith("/"):
                continue
            rel = name[len(INCLUDE_ROOT):]
            if not rel.startswith(HEADER_PREFIXES):
                continue
            target = os.path.join(dest, "include", rel)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with z.open(name) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
            headers += 1
        if headers == 0 or not any(n == INCLUDE_ROOT + "tensorflow/c/c_api.h" for n in names):
            sys.stderr.write(f"{wheel} has no tensorflow/include/tensorflow/c/c_api.h: cannot build the addon\n")
            return 2
        version = ""
        for name in names:
            if name.endswith(".dist-info/METADATA"):
                for line in z.read(name).decode("utf-8", "replace").splitlines():
                    if line.startswith("Version:"):
                        version = line.split(":", 1)[1].strip()
                        break
                break
    with open(os.path.join(dest, "VERSION"), "w") as f:
        f.write(version + "\n")
    print(f"extracted 2 libraries and {headers} headers of TensorFlow {version or '(unknown version)'}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.stderr.write(__doc__)
        sys.exit(64)
    sys.exit(main(sys.argv[1], sys.argv[2]))
