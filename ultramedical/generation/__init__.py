"""Generation with vLLM: engine construction, sampling, and in-place weight installation."""
