"""The refresh grant's parts: checking a presented token (`checks`), rotating
it (`rotation`), and answering a second use (`reuse`)."""
