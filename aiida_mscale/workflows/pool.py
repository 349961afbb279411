"""A rolling pool of child processes for a ``WorkChain``: a new child starts as soon as one finishes.

aiida-core's ``WorkChain`` waits, after a step that returned ``ToContext`` (or called ``to_context``), until
*every* awaitable registered by that step has finished (``_do_step`` returns ``Wait`` while
``self._awaitables`` is not empty; ``_on_awaitable_finished`` resolves one awaitable and resumes the outline
only when the list is empty). Submitting ``max_concurrent`` children per step therefore runs them in batches
that each wait for their slowest member.

:class:`RollingPoolMixin` keeps one step waiting for a whole queue instead. The step submits the first
``limit`` children and returns; when a child finishes, aiida-core calls ``_on_awaitable_finished`` (through
``Process.call_soon``, so inside the work chain's process scope: ``Process.current()`` is the work chain and a
child submitted there gets its ``CALL`` link). The override below first submits the next queued child,
registers it as a new awaitable (``_insert_awaitable``) and asks the runner to call back when it finishes
(``runner.call_on_process_finish``, as ``_action_awaitables`` does), and only then lets aiida-core resolve the
finished one. Because the new awaitable is already in ``self._awaitables``, the outline does not resume; it
resumes once the queue is empty and the last child has finished. A checkpoint is saved after each top-up, so a
daemon restart reloads the queue (``ctx``) and re-registers every pending awaitable (``load_instance_state``
calls ``_action_awaitables``).

Pool state lives in ``self.ctx._pools[name]`` (plain types only, so it checkpoints): the queued keys, the
limit, the name of the method that submits one key, and the context namespace that collects the children.
"""

from __future__ import annotations

import functools

from aiida.common import AttributeDict
from aiida.engine.processes.workchains.awaitable import construct_awaitable
from plumpy.process_states import ProcessState

POOLS = '_pools'


class RollingPoolMixin:
    """Mixin for a ``WorkChain``: run a queue of children at most ``limit`` at a time, without batches.

    Usage in a step::

        self.pool_start('labels', keys=[...], limit=4, submit='submit_label')
        # returns nothing; the work chain waits until every child of the pool has finished.
        # Use it in ``while_(cls.has_queue)(cls.step_that_starts_the_pool)`` so that keys left queued (a callback
        # that came while the work chain was not WAITING) are picked up.

    where ``submit_label(self, key)`` submits one child and returns its node. The finished children are in
    ``self.ctx.<name>[key]`` (a dict key -> node) in the next step.
    """

    def pool_start(self, name: str, keys, limit: int, submit: str) -> None:
        """Queue ``keys`` and submit the first ``limit`` of them with ``getattr(self, submit)(key)``."""
        if limit < 1:
            raise ValueError(f'a pool needs a limit of at least 1, not {limit}')
        pools = self.ctx.get(POOLS) or {}
        pools[name] = {'queue': [str(key) for key in keys], 'limit': int(limit), 'submit': submit}
        self.ctx[POOLS] = pools
        if name not in self.ctx:
            self.ctx[name] = AttributeDict()
        for _ in range(min(int(limit), len(pools[name]['queue']))):
            self._pool_submit_next(name, register_callback=False)

    def pool_has_queue(self, name: str) -> bool:
        """Whether pool ``name`` still has keys to submit (e.g. after the work chain was paused and played)."""
        pools = self.ctx.get(POOLS) or {}
        return bool(pools.get(name, {}).get('queue'))

    def _pool_submit_next(self, name: str, register_callback: bool) -> bool:
        """Submit the next queued key of pool ``name``; return whether one was submitted."""
        pool = self.ctx[POOLS][name]
        if not pool['queue']:
            return False
        key = pool['queue'][0]
        node = getattr(self, pool['submit'])(key)
        pool['queue'].pop(0)  # only once submitted: a key whose submission raised stays queued
        awaitable = construct_awaitable(node)
        awaitable.key = f'{name}.{key}'
        self._insert_awaitable(awaitable)
        if register_callback:  # the step has already returned: register as ``_action_awaitables`` would
            callback = functools.partial(self.call_soon, self._on_awaitable_finished, awaitable)
            self.runner.call_on_process_finish(awaitable.pk, callback)
        return True

    def _on_awaitable_finished(self, awaitable) -> None:
        """Top up the pool the finished child belonged to, then let aiida-core resolve it."""
        name = awaitable.key.split('.', 1)[0]
        pools = self.ctx.get(POOLS) or {}
        try:
            if (
                name in pools
                and self.state == ProcessState.WAITING
                and not self.has_terminated()
                and self._pool_submit_next(name, register_callback=True)
            ):
                self._save_checkpoint()
        except Exception as exception:  # noqa: BLE001
            # This runs as an event-loop callback: an exception here would be logged by the loop and lost, and the
            # finished child never resolved, so the work chain would wait forever. Report it and go on: the key
            # stays queued and the `while_(has_queue)` step of the outline submits it.
            self.report(f'pool {name}: could not start the next child after <{awaitable.pk}>: {exception!r}')
        finally:
            super()._on_awaitable_finished(awaitable)
