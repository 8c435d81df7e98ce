"""ONNX Runtime sessions specialised to the input shapes a run meets.

Why this is ours: an exported graph keeps batch, height and width
symbolic, so ONNX Runtime computes the shape arithmetic (``Shape``,
``Concat``, ``Resize`` sizes, reshapes) at every run and cannot fold it
into the plan. A session whose free dimensions are fixed
(``SessionOptions.add_free_dimension_override_by_name``) folds it at load
time. On this project's SegFormer-b0 export, batch 2 at 512 x 512, on 2
CPU cores, that made the session 1.1-1.2x faster (docs/deploy.md). A
folder of photos from one camera meets one or two input shapes (the last
batch may be smaller), so a few specialised sessions cover a run.

Contract of :meth:`ShapedSessions.get`: the session for an input of that
shape. It is the generic (symbolic) session until the shape has been asked
for ``after`` times, then a session specialised to it. At most ``limit``
specialised sessions are kept; past that the least recently used is
dropped (and its shape counts from 0 again). Each holds its own copy of
the weights (memory: up to ``limit`` times the file size more). A
workload of many shapes (a server's changing batch sizes) stops
specialising after ``4 * limit`` sessions were made: the generic session
runs the shapes without one, so loading never becomes the work. A
specialised session that cannot be created switches specialising off with
a warning, and the generic session goes on.

Memory: specialised sessions run without ONNX Runtime's memory patterns
(with them, b0 at batch 8, 683 x 512 grew to 1.9 GB against the generic
session's 1.2 GB; without, 1.2 GB and the same speed), and while
specialising is on the generic session hands its arena back after each
run (``memory.enable_memory_arena_shrinkage``), so the two kinds do not
each keep the largest batch's memory. :meth:`ShapedSessions.run` does
both.
"""
import collections
import threading
import warnings
from typing import Any, Callable, Dict, Sequence, Tuple

#: how many shapes' use counts are remembered before the counts restart
MAX_COUNTED_SHAPES = 64


class ShapedSessions:
    """The sessions of one model file (module docstring).

    Args:
        path (str): The ``.onnx`` file.
        generic: Its session with symbolic dimensions.
        new_options (callable): A fresh ``onnxruntime.SessionOptions`` with
            the caller's settings (threads), to specialise.
        providers (list): Execution providers of the specialised sessions.
        limit (int): Specialised sessions kept; 0 turns specialising off.
        after (int): Uses of a shape before it gets its own session.
    """

    def __init__(self, path: str, generic: Any,
                 new_options: Callable[[], Any], providers: Sequence[str],
                 limit: int = 2, after: int = 2) -> None:
        if limit < 0 or after < 1:
            raise ValueError(f'shape sessions: limit {limit} must be >= 0 '
                             f'and after {after} >= 1')
        self.path = path
        self.generic = generic
        self.limit = limit
        self.after = after
        self._new_options = new_options
        self._providers = list(providers)
        #: axis -> the name of its free dimension
        self.free: Dict[int, str] = {
            axis: dim for axis, dim in enumerate(generic.get_inputs()[0].shape)
            if isinstance(dim, str)}
        self._sessions: 'collections.OrderedDict[Tuple[int, ...], Any]' = \
            collections.OrderedDict()
        self._uses: Dict[Tuple[int, ...], int] = {}
        #: specialised sessions made so far (at most 4 * limit)
        self.made = 0
        self._shrink: Any = None  # the generic session's run options
        self._lock = threading.Lock()

    @property
    def shapes(self) -> Tuple[Tuple[int, ...], ...]:
        """The shapes that have a specialised session, oldest use first."""
        return tuple(self._sessions)

    def get(self, shape: Sequence[int]) -> Any:
        """The session to run an input of ``shape`` (module docstring)."""
        if not self.limit or not self.free:
            return self.generic
        key = tuple(int(n) for n in shape)
        with self._lock:
            session = self._sessions.get(key)
            if session is not None:
                self._sessions.move_to_end(key)
                return session
            if len(self._uses) >= MAX_COUNTED_SHAPES:
                self._uses.clear()
            self._uses[key] = uses = self._uses.get(key, 0) + 1
            if uses < self.after or self.made >= 4 * self.limit:
                return self.generic
            session = self._specialise(key)
            if session is None:
                return self.generic
            self.made += 1
            self._sessions[key] = session
            while len(self._sessions) > self.limit:
                dropped, _ = self._sessions.popitem(last=False)
                self._uses.pop(dropped, None)
            return session

    def run(self, outputs: Sequence[str], feeds: Dict[str, Any]) -> list:
        """``session.run(outputs, feeds)`` on the session for the shape of
        the (one) input in ``feeds`` (module docstring)."""
        [x] = feeds.values()
        session = self.get(x.shape)
        if session is self.generic and self.limit:
            return session.run(outputs, feeds, self._shrink_options())
        return session.run(outputs, feeds)

    def _shrink_options(self) -> Any:
        """Run options that hand the arena back after the run (made
        once)."""
        if self._shrink is None:
            import onnxruntime as ort
            self._shrink = ort.RunOptions()
            self._shrink.add_run_config_entry(
                'memory.enable_memory_arena_shrinkage', 'cpu:0')
        return self._shrink

    def _specialise(self, shape: Tuple[int, ...]) -> Any:
        import onnxruntime as ort
        options = self._new_options()
        options.enable_mem_pattern = False  # module docstring: memory
        for axis, name in self.free.items():
            options.add_free_dimension_override_by_name(name, shape[axis])
        try:
            return ort.InferenceSession(self.path, options,
                                        providers=self._providers)
        except Exception as err:  # memory, a provider: the generic goes on
            self.limit = 0
            warnings.warn(f'{self.path}: no session for input shape '
                          f'{shape} ({type(err).__name__}: '
                          f'{str(err).strip()[:200]}): the generic session '
                          f'runs every shape')
            return None
