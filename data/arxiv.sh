#!/usr/bin/env bash
# arXiv validation set (zero-shot perplexity): see scientific_papers.sh.
exec "$(dirname "$0")/scientific_papers.sh" arxiv
