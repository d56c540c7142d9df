"""Answers files built from a quiz's own key, for the quiz tests of every lesson."""

from __future__ import annotations

from inferlab.learn.quiz import Choice, Line, Numeric


def perfect_answers(quiz) -> dict:
    """The answers file a learner who knows everything would write, built from the key."""
    answers = {}
    for q in quiz.questions:
        if isinstance(q, Choice):
            answers[q.id] = q.letter(q.answer)
        elif isinstance(q, Line):
            answers[q.id] = q.answer()
        elif isinstance(q, Numeric):
            answers[q.id] = str(q.answer())  # "1/12" or "4": the learner's own notation
        else:
            answers[q.id] = {"text": "all of it", "points": list(range(len(q.key_points)))}
    return answers


def wrong_answers(quiz) -> dict:
    """One wrong answer to every question (a recall claiming only its first key point)."""
    answers = {}
    for q in quiz.questions:
        if isinstance(q, Choice):
            answers[q.id] = q.letter((q.answer + 1) % len(q.options))
        elif isinstance(q, Line):
            first = q.snippet().first_line
            answers[q.id] = first if q.answer() != first else first + 1
        elif isinstance(q, Numeric):
            answers[q.id] = float(q.answer()) * 2 + 1  # wrong even where the answer is 0
        else:
            answers[q.id] = {"text": "not much", "points": [0]}
    return answers
