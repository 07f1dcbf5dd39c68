"""Which patient an episode belongs to, by pseudonym: the national id itself never
leaves the pathway database. No Kafka, gRPC or SQL here."""

from __future__ import annotations

from dataclasses import dataclass


class PatientProblem(ValueError):
    """The national id is missing on a new episode or names another patient.
    The message never contains the number."""

    field = "nationalId"


@dataclass(frozen=True)
class KnownPatient:
    """A national id as the store knows it: its pseudonym under the current key, and every
    pseudonym it has had or would have under a known key version (current included)."""

    current: str
    pseudonyms: frozenset[str]


def episode_patient(on_episode: str, given: KnownPatient | None, *, required: bool) -> str:
    """The episode's patient pseudonym once an event is recorded.

    `on_episode` is the pseudonym already on the episode ("" if none), `given` the patient
    of the national id sent with the event (None if none), `required` whether the event
    must name the patient (intake of an episode's first event). An episode keeps the
    pseudonym it was opened with, also after the key rotated: a rotation changes the
    pseudonym of the patient's later episodes only.
    """
    if given is None:
        if required:
            raise PatientProblem("is required on the first event of an episode")
        return on_episode
    if on_episode and on_episode not in given.pseudonyms:
        raise PatientProblem("does not match the patient already on this episode")
    return on_episode or given.current
