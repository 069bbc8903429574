#!/usr/bin/env bash
# The language study of issue 20 item 5, end to end (about 36 minutes on 2 cores; README.md):
# Python, C and C++ from the installed corpus, per-language laws at 4 sizes, the synergy
# matrix at 100K, and the allocation check (the optimum against the uniform mix at equal tokens).
# Run from anything; every step resumes. Results go to docs/studies/languages/.
set -euo pipefail
cd "$(dirname "$0")/../../.."
S=docs/studies/languages
P=.cache/codescale/pool-languages   # git-ignored, like the embedded pools
SET=(--set optim.hparam_law=configs/hparam_laws/laptop.json --set trainer.val_every_steps=0
  --set trainer.progress_bar=false --set trainer.precision=bf16-mixed --set data.pool=$P)
MIX=C=0.38,C++=0.12,Python=0.5   # the fixed mix of the per-language laws: C++ at 12% fits its supply
# 1. The pool: the installed corpus with validation sets that measure the small languages
#    (about 140 C files and 30 C++ files held out; Python 0.5% as in the laptop study).
[ -f $P/meta.json ] || python -m datamodules prepare --code installed --out $P --vocab-size 512 \
  --val-fraction 0.005 --val-fraction-by-language C=0.05,C++=0.2 --tokenizer-sample 64M --no-progress
python -m datamodules info --pool $P > $S/pool.json
# 2. Per-language laws: 100K to 800K x 1.5M, 3M, 6M tokens at the fixed mix, WSD families. Four
#    sizes: the held-out check fits three and predicts the fourth (two sizes leave A, alpha free).
python -m laws design --n 100K:800K:4 --d 1.5M:6M:3 --vocab-size 512 --seq-len 128 --schedule wsd \
  "${SET[@]}" --set data.languages=$MIX --name languages_laws --out configs/sweeps/languages_laws.yaml
python sweep.py configs/sweeps/languages_laws.yaml
python -m laws fit runs/languages_laws --law chinchilla --per-language --languages C,C++,Python --bootstrap 100 \
  --out $S/per_language.json > $S/per_language.txt 2>&1 || echo "exit $?: no fit" >> $S/per_language.txt
python -m laws plot exponents --fit $S/per_language.json --out $S
# 3. Synergy at 100K: 600K tokens of each target, 300K added or 25% replaced, 3 seeds of each base
#    (2 seeds leave the noise one degree of freedom: the first run's sds differed 90x by language).
python -m laws synergy-design --languages C,C++,Python --n 100K --base 600K --added 300K --seeds 3 \
  --vocab-size 512 --seq-len 128 "${SET[@]}" --name languages_synergy --out configs/sweeps/languages_synergy.yaml
python sweep.py configs/sweeps/languages_synergy.yaml
python -m laws synergy runs/languages_synergy --exponents $S/per_language.json --out $S/synergy.json \
  > $S/synergy.txt 2>&1
python -m laws plot synergy --synergy $S/synergy.json --out $S
# 4. Allocation at 200K / 2.4M tokens (the uniform mix fits C++'s supply there), checked by training
#    the optimum and the uniform mix with 4 seeds each (2 at first; 2 more added to measure the
#    seed spread better).
SUPPLY=$(python -c "import json; t=json.load(open('$S/pool.json'))['train']['code']['by_language']; print(','.join(f'{k}={t[k][\"tokens\"]}' for k in ('C','C++','Python')))")
python -m laws allocate --fits $S/per_language.json --synergy $S/synergy.json --tokens 2.4M --n 200K \
  --supply "$SUPPLY" --fit-mix $MIX --seeds 4 --sweep-out configs/sweeps/languages_check.yaml \
  --set data.vocab_size=512 --set data.seq_len=128 --set optim.hparam_law=configs/hparam_laws/laptop.json \
  --set trainer.val_every_steps=0 --set trainer.progress_bar=false --set trainer.precision=bf16-mixed \
  --set data.pool=$P > $S/allocate.txt
python -m laws allocate --fits $S/per_language.json --synergy $S/synergy.json --tokens 2.4M --n 200K \
  --supply "$SUPPLY" --fit-mix $MIX --json > $S/allocate.json
python sweep.py configs/sweeps/languages_check.yaml
# 5. The same two mixes under the laws without transfer (T = I): does the measured transfer help?
OPT=$(python -c "import json; p=json.load(open('$S/allocate.json'))['optimum']['proportions']; print(','.join(f'{k}={v:.6g}' for k, v in p.items()))")
python -m laws allocate --fits $S/per_language.json --tokens 2.4M --n 200K --supply "$SUPPLY" \
  --fit-mix $MIX --mix "$OPT" --json > $S/allocate_no_transfer.json
python - <<'PY' | tee $S/check.md
import json, pathlib, statistics
S = "docs/studies/languages"
pred = json.load(open(f"{S}/allocate.json"))
plain = json.load(open(f"{S}/allocate_no_transfer.json"))
names = pred["languages"]
measured = {}
for path in sorted(pathlib.Path("runs/languages_check").glob("*/result.json")):
    r = json.loads(path.read_text())
    measured.setdefault(path.parent.name.split("_seed")[0], []).append(r["val_bpc_by_language"])
print("| mix | | " + " | ".join(names) + " | weighted |")
print("|---|---|" + "---:|" * (len(names) + 1))
row = lambda label, v: print(f"| | {label} | " + " | ".join(f"{v[k]:.4f}" for k in names)
                             + f" | {statistics.mean(v[k] for k in names):.4f} |")
for mix, same in (("optimum", "mix1"), ("uniform", "uniform")):
    runs = measured[mix]
    print(f"| {mix} | share | " + " | ".join(f"{pred[mix]['proportions'][k]:.3f}" for k in names) + " | |")
    row("predicted with transfer", pred[mix]["losses"])
    row("predicted without (T = I)", plain[same]["losses"])
    for seed, r in enumerate(runs):
        row(f"measured, seed {seed}", r)
    row("measured, mean", {k: statistics.mean(r[k] for r in runs) for k in names})
PY
