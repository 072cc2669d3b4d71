"""The serving gateway: OpenAI-compatible API over providers, aliases and pipelines, with
API keys and limits, retries, fallbacks, circuit breakers and a response cache."""
