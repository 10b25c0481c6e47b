#!/usr/bin/env bash
# Fill DIR with about MB megabytes of files shaped like a real image layer: many small
# files, some medium, a few large; random bytes (so gzip keeps about the same size)
# mixed with text. Deterministic for a given SEED. Usage: make-payload.sh DIR MB SEED
set -euo pipefail
dir=${1:?usage: make-payload.sh DIR MB SEED}
mb=${2:?}
seed=${3:?}
mkdir -p "$dir"
python3 - "$dir" "$mb" "$seed" <<'PY'
import os, random, sys
root, mb, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
budget = mb * 1_000_000
n = 0
while budget > 0:
    r = rng.random()
    size = rng.randint(200, 8_000) if r < 0.8 else rng.randint(8_000, 300_000) if r < 0.98 else rng.randint(1_000_000, 4_000_000)
    size = min(size, budget)
    d = os.path.join(root, f"d{n // 100:03d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{n:05d}"), "wb") as f:
        if n % 5 == 0:  # some compressible text, as real layers have
            line = f"line {n} of some configuration or source text\n".encode()
            f.write((line * (size // len(line) + 1))[:size])
        else:
            f.write(rng.randbytes(size))
    budget -= size
    n += 1
PY
