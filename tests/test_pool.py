"""The rolling pool (aiida_mscale/workflows/pool.py) has at most ``limit`` children in flight, and that many.

Real work chains on the test profile's runner, no daemon and no binary: a parent with :class:`RollingPoolMixin`
submits ``Child`` work chains through the pool. Concurrency is read from the database, not from the pool's own
bookkeeping: each time the parent submits a child, and each time a child runs its step, the number of the parent's
children that have not terminated is counted (CALL links and process states).
"""

import pytest
from aiida import orm
from aiida.engine import WorkChain, run_get_node, while_

from aiida_mscale.workflows.pool import RollingPoolMixin


def _unterminated_children(parent: orm.ProcessNode) -> int:
    """Children of ``parent`` (over CALL links) whose process has not finished, excepted or been killed."""
    query = orm.QueryBuilder()
    query.append(orm.ProcessNode, filters={'id': parent.pk}, tag='parent')
    query.append(orm.ProcessNode, with_incoming='parent', project='attributes.process_state')
    return sum(1 for state in query.all(flat=True) if state not in ('finished', 'excepted', 'killed'))


class Child(WorkChain):
    """Counts its running siblings (itself included) in its one step."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('key', valid_type=orm.Str)
        spec.outline(cls.observe)

    def observe(self):
        self.node.base.extras.set('siblings_in_flight', _unterminated_children(self.node.caller))


class PoolParent(RollingPoolMixin, WorkChain):
    """Runs ``count`` children, at most ``limit`` at once, through the rolling pool; records what it saw."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('count', valid_type=orm.Int)
        spec.input('limit', valid_type=orm.Int)
        spec.outline(cls.setup, while_(cls.has_queue)(cls.run_pool), cls.results)
        spec.output('finished', valid_type=orm.List)
        spec.output('in_flight_at_submit', valid_type=orm.List)

    def setup(self):
        self.ctx.started = False
        self.ctx.in_flight_at_submit = []

    def has_queue(self):
        return not self.ctx.started or self.pool_has_queue('children')

    def run_pool(self):
        keys = [f'k{i:02d}' for i in range(self.inputs.count.value)]
        keys = keys if not self.ctx.started else self.ctx._pools['children']['queue']
        self.ctx.started = True
        self.pool_start('children', keys, self.inputs.limit.value, 'submit_child')

    def submit_child(self, key):
        # the children already in flight plus the one about to start
        self.ctx.in_flight_at_submit.append(_unterminated_children(self.node) + 1)
        return self.submit(Child, key=orm.Str(key))

    def results(self):
        finished = sorted(key for key, node in self.ctx.children.items() if node.is_finished_ok)
        self.out('finished', orm.List(finished).store())
        self.out('in_flight_at_submit', orm.List(self.ctx.in_flight_at_submit).store())


@pytest.mark.parametrize('count, limit', [(5, 2), (3, 1), (2, 4)])
def test_rolling_pool_runs_at_most_limit_children_at_once(aiida_profile, count, limit):
    results, node = run_get_node(PoolParent, count=orm.Int(count), limit=orm.Int(limit))
    assert node.is_finished_ok, node.exit_status

    # every queued key ran once, and finished
    keys = [f'k{i:02d}' for i in range(count)]
    assert results['finished'].get_list() == keys
    children = [c for c in node.called if isinstance(c, orm.WorkflowNode)]
    assert sorted(c.inputs.key.value for c in children) == keys

    # never more than `limit` in flight, and the pool did fill up to it (a pool of one at a time would fail here)
    seen_by_parent = results['in_flight_at_submit'].get_list()
    seen_by_children = [c.base.extras.get('siblings_in_flight') for c in children]
    assert len(seen_by_parent) == count
    assert max(seen_by_parent) == min(limit, count), seen_by_parent
    assert max(seen_by_children) <= min(limit, count), seen_by_children
