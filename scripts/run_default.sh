#!/usr/bin/env bash
# `make run`: the main job on the built-in default. Grows with the engine: today it shows the default model
# (a tiny DiT for the char-level tinyshakespeare run) as the engine sees it.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== duo.cu default run: tiny DUO model, tinyshakespeare (char) =="
build/duo-inspect --model tiny --vocab_size 65 --model.length 256
