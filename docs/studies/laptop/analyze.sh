# The laptop study's analysis: results, fits, report. Run from anywhere; takes about a minute.
set -e
cd "$(dirname "$0")/../../.."
S=docs/studies/laptop
mkdir -p $S/fits
python -m laws collect runs/laptop --out $S/results.csv
python -m laws collect runs/laptop_noise --out $S/noise.csv
C=$(python -c "import csv; print(max(float(r['C']) for r in csv.DictReader(open('$S/results.csv'))))")
for L in chinchilla farseer; do
  python -m laws fit $S/results.csv --law $L --bootstrap 200 --budget $C --out $S/fits/$L.json \
    > $S/fits/$L.txt 2>&1 || echo "exit $?: no $L fit" >> $S/fits/$L.txt
  python -m laws fit $S/results.csv --law $L --holdout 'n<1.2M' --out $S/fits/${L}_holdout.json \
    > $S/fits/${L}_holdout.txt 2>&1 || echo "exit $?: no $L holdout fit" >> $S/fits/${L}_holdout.txt
done
python -m laws compare $S/results.csv --law chinchilla farseer --holdout 'n<1.2M' > $S/fits/compare.txt 2>&1 \
  || echo "exit $?: no comparison" >> $S/fits/compare.txt
python -m laws report $S/results.csv --out $S --budgets $C 1e14 1e15 > $S/report.txt 2>&1 \
  || echo "exit $?: no report" >> $S/report.txt
