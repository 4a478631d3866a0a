#!/usr/bin/env bash
# `make kernel-check`: run the local-model tests on llama.cpp compiled for another kernel path.
#
# setup.sh compiles llama.cpp natively (GGML_NATIVE: every instruction this CPU has, AVX-512
# and AMX included where present). A 135M model's greedy text depends on those float kernels,
# which is why no test compares a model's words to a fixed string. This builds .venv-kernels
# from the same lock with llama.cpp limited to AVX2/FMA/F16C (the kernels of an AVX2-only AMD
# EPYC or an older Xeon), checks that the library really lacks AVX-512, and runs every
# local_model test there. Its wheel is cached apart from the native one (setup.sh keys the
# cache by CMAKE_ARGS). docs/testing.md records the runs.
set -euo pipefail
cd "$(dirname "$0")/.."
export CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
-DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF \
-DGGML_AVX512_BF16=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
VENV=.venv-kernels bash scripts/setup.sh
.venv-kernels/bin/python - <<'PY'
import llama_cpp
info = llama_cpp.llama_print_system_info().decode()
print("kernel-check: llama.cpp", llama_cpp.__version__, "->", info.strip())
assert "AVX2 = 1" in info, "the AVX2 build did not take"
assert "AVX512 = 1" not in info and "AMX_INT8 = 1" not in info, "AVX-512/AMX still compiled in"
PY
.venv-kernels/bin/python -m pytest -m local_model tests -p no:cacheprovider "$@"
