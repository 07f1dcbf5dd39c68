"""The coordination domain, pure: no Kafka, gRPC or SQL, and no clock of its own (every
function that depends on time takes the instant as an argument).

* `task`: the task record (status, priority, unit kinds, deterministic ids, overdue).
* `due`: the due-time grammar ("same day", "N working days", "reception day", ...).
* `rules`: the rule set as plain data: rule, reaction, unit offices, occasions.
* `planning`: pathway change -> episode, occasions, and the plan of task changes.
* `calendar`: Norwegian working days in Europe/Oslo.

Vocabulary
* occasion: what a pathway change means for coordination (discharge-ready notice,
  reception, rehabilitation start, withdrawal, death, closing...).
* rule: occasion (+ optional needs) -> one task of a kind for a unit kind, with a due rule.
* reaction: occasion -> open tasks of some kinds are completed or cancelled (moot).
* routing: unit kind -> concrete unit, e.g. one of Stavanger's four health offices.
"""
