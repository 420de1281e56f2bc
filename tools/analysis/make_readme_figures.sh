#!/usr/bin/env bash
# Render the README figures (one per analysis tool) into docs/figures/ from the main job's
# outputs (`make demo`, i.e. demo/main_job.py --out-dir outputs/demo).
#
#   bash tools/analysis/make_readme_figures.sh [DEMO_DIR]        (default: outputs/demo)
#
# Needs DEMO_DIR/data/VOC2007 and the job's runs, DEMO_DIR/runs/{plain,pow}/seed_<SEED>/
# (train/iter_*.pth, sweep/results.json; SEED=0 unless set). PNGs are kept small (< 300 KB).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
DEMO=${1:-outputs/demo}
OUT=${OUT:-docs/figures}  # override to render elsewhere
VOC=$DEMO/data/VOC2007
RUNS=$DEMO/runs
SEED=${SEED:-0}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

latest() {  # the checkpoint with the highest iteration number in a work dir
    ls "$1"/iter_*.pth 2>/dev/null | sed 's/.*iter_\([0-9]*\)\.pth/\1 &/' | sort -n | tail -1 | cut -d' ' -f2
}
CK_PLAIN=$(latest "$RUNS/plain/seed_$SEED/train")
CK_POW=$(latest "$RUNS/pow/seed_$SEED/train")
for f in "$VOC/ImageSets/Main/test.txt" "$CK_PLAIN" "$CK_POW" \
         "$RUNS/plain/seed_$SEED/sweep/results.json" "$RUNS/pow/seed_$SEED/sweep/results.json"; do
    [ -n "$f" ] && [ -f "$f" ] || { echo "missing main-job output under $DEMO (run 'make demo' first): ${f:-checkpoint}" >&2; exit 1; }
done
mkdir -p "$OUT"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

echo "== 1/4 detection grid (supplement Fig. 4): ResNet-18+POW-1, severity 3"
mapfile -t IDS < <(head -n 2 "$VOC/ImageSets/Main/test.txt")
IMGS=()
for i in "${IDS[@]}"; do IMGS+=("$VOC/JPEGImages/$i.jpg"); done
$PY demo/image_demo.py "${IMGS[@]}" configs/synthvoc/faster_rcnn_r18_pow_synthvoc.py "$CK_POW" \
    --distortions inpainting ngrn salt_pepper motion_blur jpeg --severities 3 \
    --ann-dir "$VOC/Annotations" --cell-px 200 --out "$OUT/detection_grid.png"

echo "== 2/4 feature-moment shift (supplement Fig. 1): plain ResNet-18 detector backbone, NGRN s5"
mkdir -p "$TMP/test_images"
head -n 40 "$VOC/ImageSets/Main/test.txt" | while read -r i; do cp "$VOC/JPEGImages/$i.jpg" "$TMP/test_images/"; done
$PY tools/analysis/feature_moments.py "$TMP/test_images" \
    --config configs/synthvoc/faster_rcnn_r18_synthvoc.py --checkpoint "$CK_PLAIN" \
    --distortion ngrn --severity 5 --img-size 192 \
    --layers conv1 bn1 layer3.0.conv1 layer3.0.bn1 --out-dir "$TMP/moments"
cp "$TMP/moments/moment_shift.png" "$TMP/moments/moment_shift.csv" "$OUT/"

echo "== 3/4 learned POW exponents (supplement Fig. 2)"
$PY tools/analysis/alpha_histograms.py "$CK_POW" --out-dir "$TMP/alpha"
cp "$TMP/alpha/alpha_histograms.png" "$TMP/alpha/alpha_summary.csv" "$OUT/"

echo "== 4/4 robustness curves (supplement Fig. 3)"
$PY tools/analysis/plot_robustness.py "$RUNS/plain/seed_$SEED/sweep/results.json" "$RUNS/pow/seed_$SEED/sweep/results.json" \
    --labels ResNet-18 ResNet-18+POW-1 --out "$OUT/robustness.png"

echo "== README size budget: PNGs over 280 KB are re-encoded with a 256-colour palette"
$PY - "$OUT"/*.png <<'PY'
import os, sys
from PIL import Image
for path in sys.argv[1:]:
    if os.path.getsize(path) > 280_000:
        img = Image.open(path).convert('RGB')
        img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE) \
           .save(path, optimize=True)
    print(f'{path}: {os.path.getsize(path) // 1024} KB')
PY
