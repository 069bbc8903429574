set -e
cd "$(dirname "$0")/../../.."
S=docs/studies/laptop
mkdir -p $S/fits
python -m laws collect runs/laptop --out $S/results.csv
python - <<'P'
import csv
rows=list(csv.DictReader(open('docs/studies/laptop/results.csv')))
keep=[r for r in rows if not r['name'].startswith('n200K_')]
w=csv.DictWriter(open('docs/studies/laptop/results_without_200K.csv','w',newline=''), rows[0].keys()); w.writeheader(); w.writerows(keep)
P
for T in results results_without_200K; do
  for L in chinchilla farseer; do
    suffix=$([ $T = results ] && echo "_all_sizes" || echo "")
    python -m laws fit $S/$T.csv --law $L --bootstrap 200 --budget 3.8e13 --out $S/fits/$L$suffix.json > $S/fits/$L$suffix.txt 2>&1 || echo "fit $L $T failed" >> $S/fits/$L$suffix.txt
    python -m laws fit $S/$T.csv --law $L --holdout 'n<1.2M' --out $S/fits/${L}_holdout$suffix.json > $S/fits/${L}_holdout$suffix.txt 2>&1 || echo "holdout fit failed" >> $S/fits/${L}_holdout$suffix.txt
  done
done
python -m laws report $S/results_without_200K.csv --out $S --budgets 3.8e13 1e14 1e15 > $S/report.txt 2>&1 || echo "report failed" >> $S/report.txt
