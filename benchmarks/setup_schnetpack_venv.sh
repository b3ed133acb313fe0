#!/usr/bin/env bash
# Creates benchmarks/.venv-schnetpack: an isolated venv with SchNetPack 2.1 on torch 2.13 (CPU).
# SchNetPack 2.1 pins sympy<=1.12, which torch 2.13 rejects, so it is installed with --no-deps
# and its runtime dependencies are installed by hand (never torch: that would pull CUDA).
# SchNetPack 2.1's data/loader.py imports T_co from torch.utils.data.dataloader, which torch
# 2.13 removed; the venv's installed copy (only that copy) is patched to define it locally.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv-schnetpack"
PY="${PYTHON:-python3}"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import schnetpack" 2>/dev/null; then
    echo "schnetpack venv ready: $VENV"; exit 0
fi
"$PY" -m venv "$VENV"
PIP="$VENV/bin/pip"
"$PIP" install -q torch==2.13.0
"$PIP" install -q --no-deps "schnetpack==2.1.*"
"$PIP" install -q numpy ase h5py hydra-core "pytorch-lightning>=2.0" torchmetrics matscipy tqdm pyyaml \
    sympy fasteners dirsync tensorboard tensorboardX protobuf rich hydra-colorlog
"$PIP" install -q --no-deps torch-ema   # depends on torch only; keep pip away from torch
LOADER="$("$VENV/bin/python" - <<'PY'
import importlib.util, pathlib
spec = importlib.util.find_spec("schnetpack")
print(pathlib.Path(spec.origin).parent / "data" / "loader.py")
PY
)"
"$VENV/bin/python" - "$LOADER" <<'PY'
import re, sys
path = sys.argv[1]
src = open(path).read()
if "T_co = TypeVar" not in src:
    src = re.sub(r"from torch\.utils\.data\.dataloader import ([^\n]*)", lambda m: (
        "from torch.utils.data.dataloader import " + ", ".join(n.strip() for n in m.group(1).split(",") if n.strip() != "T_co")
        if any(n.strip() != "T_co" for n in m.group(1).split(",")) else ""), src, count=1)
    src = "from typing import TypeVar\nT_co = TypeVar(\"T_co\", covariant=True)\n" + src
    open(path, "w").write(src)
    print("patched", path)
PY
"$VENV/bin/python" -c "import torch, schnetpack; print('schnetpack', schnetpack.__version__ if hasattr(schnetpack,'__version__') else '2.1', 'torch', torch.__version__)"
