"""The VM lifecycle, declared once: its state machine (which state may follow which) and its
actions (name, labels, the states that allow each, its job, where it leads).

Read by fabric.services (vm_action, vm_allowed_actions), fabric.jobs (the state a job's hooks
leave the VM in), the VM page's action bar, the VM list's bulk actions and the API's action routes,
so adding or changing an action here changes all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from portal.states import StateMachine
from tenants.selectors import subscription_refusal

from .models import VirtualMachine, VMState

S = VMState

VM_STATES = StateMachine(
    model=VirtualMachine,
    initial=S.CREATING,
    transitions={
        S.CREATING: {S.RUNNING, S.STOPPED, S.FAILED},
        S.STOPPED: {S.STARTING, S.DELETING},
        S.RUNNING: {S.STOPPING, S.RESTARTING, S.DELETING},
        # A transitional state ends in the action's result, or back where it was if the job failed.
        S.STARTING: {S.RUNNING, S.STOPPED, S.FAILED},
        S.STOPPING: {S.STOPPED, S.RUNNING, S.FAILED},
        S.RESTARTING: {S.RUNNING, S.FAILED},
        S.DELETING: {S.DELETED, S.FAILED, S.RUNNING, S.STOPPED},
        # A failed create may be retried; a retried or reconciled action may find the VM running or
        # stopped; a failed VM may always be deleted.
        S.FAILED: {S.CREATING, S.DELETING, S.RUNNING, S.STOPPED},
        S.DELETED: set(),
    },
)


@dataclass(frozen=True)
class VMAction:
    """One thing a tenant can do to an existing VM, as a job.

    `busy_state` is the VM's state while the job runs; `success_state` where the job leaves it (a
    failed job puts it back in the state it was in). A `destructive` action is confirmed on a page
    of its own first. A suspended subscription is read-only to its tenant: no action is allowed
    (staff suspend, activate and delete it, through tenants.lifecycle).
    """

    name: str
    label: str
    progress: str
    allowed_in: tuple[str, ...]
    busy_state: str
    job_kind: str
    success_state: str
    destructive: bool = False
    needs_active_subscription: bool = True

    def allows(self, state: str) -> bool:
        return state in self.allowed_in

    def refusal(self, vm: VirtualMachine) -> str:
        """Why the VM's state or its subscription's doesn't allow this action now ("" if they do): a
        button's tooltip. Reads `vm.subscription` (lists load it with the VM)."""
        if self.needs_active_subscription and (read_only := subscription_refusal(vm.subscription)):
            return read_only
        if self.allows(vm.state):
            return ""
        if vm.is_busy:
            return f"Not available while the VM is {vm.get_state_display().lower()}."
        names = " or ".join(VMState(state).label.lower() for state in self.allowed_in)
        return f"Available when the VM is {names}."


VM_ACTIONS: dict[str, VMAction] = {
    action.name: action
    for action in (
        VMAction("start", "Start", "Starting", (S.STOPPED,), S.STARTING, "vm.start", S.RUNNING),
        VMAction("stop", "Stop", "Stopping", (S.RUNNING,), S.STOPPING, "vm.stop", S.STOPPED),
        VMAction("shutdown", "Shut down", "Shutting down", (S.RUNNING,), S.STOPPING, "vm.shutdown", S.STOPPED),
        VMAction("restart", "Restart", "Restarting", (S.RUNNING,), S.RESTARTING, "vm.restart", S.RUNNING),
        VMAction(
            "delete",
            "Delete",
            "Deleting",
            (S.RUNNING, S.STOPPED, S.FAILED),
            S.DELETING,
            "vm.delete",
            S.DELETED,
            destructive=True,
        ),
    )
}


def vm_action_of_job(kind: str) -> VMAction:
    """The declared action a job kind carries out (its hooks read the states from it)."""
    return next(action for action in VM_ACTIONS.values() if action.job_kind == kind)
