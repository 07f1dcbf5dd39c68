"""Which patient an episode belongs to, by pseudonym: the national id itself never
leaves the pathway database. No Kafka, gRPC or SQL here."""

from __future__ import annotations


class PatientProblem(ValueError):
    """The national id is missing on a new episode or names another patient.
    The message never contains the number."""

    field = "nationalId"


def episode_patient(on_episode: str, given: str | None, *, required: bool) -> str:
    """The episode's patient pseudonym once an event is recorded.

    `on_episode` is the pseudonym already on the episode ("" if none), `given` the
    pseudonym of the national id sent with the event (None if none), `required` whether
    the event must name the patient (intake of an episode's first event).
    """
    if given is None:
        if required:
            raise PatientProblem("is required on the first event of an episode")
        return on_episode
    if on_episode and given != on_episode:
        raise PatientProblem("does not match the patient already on this episode")
    return on_episode or given
