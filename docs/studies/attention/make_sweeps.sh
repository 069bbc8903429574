#!/usr/bin/env bash
# Writes configs/sweeps/attention/*.yaml: MHA, GQA (g = n/4), MFA and MFA-KR (C_q = d/2) at
# 100K and 400K (head size 16: 4 and 8 query heads), 1M and 2M tokens as one WSD family per
# (type, size), with the laptop study's pool (pinned by path), vocabulary, sequence length, lr law
# and precision.
# One file per (type, size) because g and C_q follow the size.
set -euo pipefail
common=(--d 1M:2M:2 --vocab-size 512 --seq-len 128 --schedule wsd
  --set optim.hparam_law=configs/hparam_laws/laptop.json --set trainer.val_every_steps=0
  --set trainer.progress_bar=false --set trainer.precision=bf16-mixed --set data.val_fraction=0.005
  --set model.head_dim=16 --set data.pool=.cache/codescale/installed-15e58b2867fb)
for size in 100K:64 400K:128; do
  n=${size%%:*} d=${size##*:}
  heads=$((d / 16))
  declare -A sets=(
    [mha]=""
    [gqa]="--set model.attention=gqa --set model.n_kv_head=$((heads / 4))"
    [mfa]="--set model.attention=mfa --set model.q_rank=$((d / 2))"
    [mfa_kr]="--set model.attention=mfa_kr --set model.q_rank=$((d / 2))"
  )
  for kind in mha gqa mfa mfa_kr; do
    name=attention_${kind}_${n}
    # shellcheck disable=SC2086
    python -m laws design --n "$n:$n:1" "${common[@]}" ${sets[$kind]} --name "$name" \
      --out "configs/sweeps/attention/$name.yaml" \
      --description "Attention comparison (issue 18): $kind at $n, docs/studies/attention/make_sweeps.sh" \
      | tail -1
  done
done
# Run-to-run noise: MHA 100K / 1M from scratch with two more initialisation seeds (the family's
# batch, warm-up and schedule; run.seed=0 is the family's branch).
cat > configs/sweeps/attention/attention_noise.yaml <<'YAML'
name: attention_noise
description: 'Run-to-run noise of the attention comparison (issue 18): MHA 100K at 1M tokens from
  scratch with run.seed 1 and 2, as the attention_mha_100K family trains it (docs/studies/attention).'
overrides: [data.vocab_size=512, data.seq_len=128, optim.hparam_law=configs/hparam_laws/laptop.json,
  trainer.val_every_steps=0, trainer.progress_bar=false, trainer.precision=bf16-mixed,
  data.val_fraction=0.005, data.pool=.cache/codescale/installed-15e58b2867fb, model.head_dim=16, optim.schedule=wsd, optim.decay_fraction=0.2,
  optim.decay_shape=1-sqrt, optim.reference_tokens=2000000, optim.warmup_steps=98]
runs:
- {name: n100K_d1M_seed1, n: 100000, tokens: 1000000, code_fraction: 1.0, overrides: [run.seed=1]}
- {name: n100K_d1M_seed2, n: 100000, tokens: 1000000, code_fraction: 1.0, overrides: [run.seed=2]}
YAML
