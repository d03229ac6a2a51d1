#!/usr/bin/env bash
# PubMed validation set (zero-shot perplexity): see scientific_papers.sh.
exec "$(dirname "$0")/scientific_papers.sh" pubmed
