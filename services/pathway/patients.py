"""The patient tables of the pathway database: a national id once (`patient`), and its
keyed pseudonym under each key version it was seen with (`patient_pseudonym`).

A returning patient is found by its pseudonyms under every known key version, else (a
version no longer in the key file) by the national id itself, so a rotated key never
creates the patient a second time, and an episode opened under an old key still matches
its patient."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from pathway.domain.national_id import NationalId
from pathway.domain.patient import KnownPatient
from pathway.domain.pseudonym import PseudonymKeys
from pathway.models import PatientRow, PseudonymRow


@dataclass(frozen=True)
class FoundPatient:
    national_id: NationalId
    patient_id: int | None  # None: not stored yet
    known: KnownPatient


class Patients:
    def __init__(self, keys: PseudonymKeys) -> None:
        self.keys = keys

    def find(self, session: Session, national_id: NationalId) -> FoundPatient:
        candidates = set(self.keys.all_pseudonyms(national_id).values())
        by_pseudonym = select(PseudonymRow.patient_id).where(
            col(PseudonymRow.pseudonym).in_(candidates)
        )
        patient_id = session.exec(by_pseudonym).first()
        if patient_id is None:
            by_number = select(PatientRow.id).where(PatientRow.national_id == national_id.value)
            patient_id = session.exec(by_number).first()
        if patient_id is not None:
            stored = select(PseudonymRow.pseudonym).where(PseudonymRow.patient_id == patient_id)
            candidates.update(session.exec(stored))
        known = KnownPatient(self.keys.pseudonym(national_id), frozenset(candidates))
        return FoundPatient(national_id, patient_id, known)

    def remember(self, session: Session, found: FoundPatient) -> None:
        """Store the patient and its pseudonym under the current key, if not yet."""
        patient_id = found.patient_id
        if patient_id is None:
            patient = PatientRow(national_id=found.national_id.value)
            session.add(patient)
            session.flush()
            patient_id = patient.id
        current = found.known.current
        if patient_id is not None and session.get(PseudonymRow, current) is None:
            version = self.keys.current_version
            session.add(PseudonymRow(pseudonym=current, patient_id=patient_id, key_version=version))
