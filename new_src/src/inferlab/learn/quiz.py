"""Quizzes: the four kinds of question, loading `quiz.yaml`, reading answers, grading.

quiz.yaml:

    questions:
      - id: shared-memory-scope            # unique, [a-z0-9-]
        kind: choice
        prompt: Which level of the CUDA hierarchy shares shared memory?
        options: [the grid, a thread block, a warp, a thread]
        answer: b                          # the option's letter
        explanation: ...                   # the correction shown on a miss
      - id: line-block-idx
        kind: line                         # "point at the line"
        prompt: Which line plays the role of CUDA's blockIdx.x?
        code: inferlab.kernels.elementwise:_add_kernel
        match: tl.program_id               # the answer is the one line containing this
        explanation: ...
      - id: intensity-fp32-add
        kind: numeric
        prompt: ...
        answer_expr: arithmetic_intensity(flops=1, bytes=12)   # see inferlab.learn.napkin
        units: FLOP/byte
        tolerance: {rel: 0.01}             # or {abs: 0.5}; default exact to 1e-9 relative
        explanation: ...
      - id: recall-program-instance
        kind: recall
        recall: program-instance           # a prompt of the lesson's recall.yaml, or inline:
        # prompt: ..., model_answer: ..., key_points: [...]

Answers (a file, or typed in): choice -> a letter; line -> a line number as shown beside the
source; numeric -> a number (or "1/12"); recall -> {text: ..., points: [indices of the key points
the learner had, from 0]}. A recall answer scores the fraction of key points; the rest score 0 or 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import yaml

from inferlab.errors import InferlabError
from inferlab.learn import napkin, source
from inferlab.learn.curriculum import Lesson
from inferlab.learn.inline import expand


@dataclass(frozen=True, slots=True)
class Result:
    question_id: str
    score: float  # 0..1
    given: str  # the answer as the learner gave it, for display
    expected: str  # the right answer, for display
    correction: str  # what to learn from a miss (empty when fully right)
    words: str = ""  # a recall answer's own text, kept as evidence in the record

    @property
    def correct(self) -> bool:
        return self.score >= 1.0


@dataclass(frozen=True, slots=True)
class RecallAnswer:
    text: str
    points: frozenset[int]


@dataclass(frozen=True, slots=True)
class Choice:
    id: str
    prompt: str
    options: tuple[str, ...]
    answer: int  # index into options
    explanation: str

    @staticmethod
    def letter(index: int) -> str:
        return "abcdefghijklmnopqrstuvwxyz"[index]

    def parse(self, raw: object) -> int:
        letters = [self.letter(i) for i in range(len(self.options))]
        if isinstance(raw, str) and raw.strip().lower() in letters:
            return letters.index(raw.strip().lower())
        raise InferlabError(f"answer to {self.id!r} must be one of the letters {', '.join(letters)}")

    def expected(self) -> str:
        return f"{self.letter(self.answer)}) {self.options[self.answer]}"

    def correction(self) -> str:
        return self.explanation

    def grade(self, answer: int) -> Result:
        given = f"{self.letter(answer)}) {self.options[answer]}"
        ok = answer == self.answer
        return Result(self.id, float(ok), given, self.expected(), "" if ok else self.correction())


@dataclass(frozen=True, slots=True)
class Line:
    id: str
    prompt: str
    code: str  # code reference, `module:name`
    match: str  # the answer is the one line of the pulled source that contains this
    explanation: str

    def snippet(self) -> source.Snippet:
        return source.pull(self.code)

    def answer(self) -> int:
        return self.snippet().line_of(self.match)

    def parse(self, raw: object) -> int:
        snip = self.snippet()
        number = _integer(raw)
        if number is None or not snip.first_line <= number <= snip.last_line:
            raise InferlabError(
                f"answer to {self.id!r} must be a line number from {snip.first_line} to {snip.last_line}"
            )
        return number

    def _show(self, number: int) -> str:
        return f"line {number}: {dict(self.snippet().numbered())[number].strip()}"

    def expected(self) -> str:
        return self._show(self.answer())

    def correction(self) -> str:
        return self.explanation

    def grade(self, answer: int) -> Result:
        ok = answer == self.answer()
        correction = "" if ok else self.correction()
        return Result(self.id, float(ok), self._show(answer), self.expected(), correction)


@dataclass(frozen=True, slots=True)
class Numeric:
    id: str
    prompt: str
    answer_expr: str  # evaluated by inferlab.learn.napkin, never a typed number
    units: str
    rel_tol: float
    abs_tol: float
    explanation: str

    def answer(self) -> int | float | Fraction:
        value = napkin.evaluate(self.answer_expr)
        if not isinstance(value, int | float | Fraction) or isinstance(value, bool):
            raise ValueError(f"quiz question {self.id!r}: answer_expr gives {value!r}, not a number")
        return value

    def parse(self, raw: object) -> float:
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            return float(raw)
        if isinstance(raw, str):
            try:
                return float(Fraction(raw.strip().replace("_", "").replace(",", "")))
            except (ValueError, ZeroDivisionError):
                pass
        raise InferlabError(f"answer to {self.id!r} must be a number (like 4, 0.25 or 1/12)")

    def expected(self) -> str:
        right = self.answer()
        text = f"{napkin.format_number(right)} {self.units}"
        return text + (f" (≈ {float(right):.4g})" if isinstance(right, Fraction) else "")

    def correction(self) -> str:
        return self.explanation

    def grade(self, answer: float) -> Result:
        right = float(self.answer())
        ok = math.isclose(answer, right, rel_tol=self.rel_tol, abs_tol=self.abs_tol)
        given = f"{answer:g} {self.units}"
        return Result(self.id, float(ok), given, self.expected(), "" if ok else self.correction())


@dataclass(frozen=True, slots=True)
class Recall:
    id: str
    prompt: str
    model_answer: str
    key_points: tuple[str, ...]

    def parse(self, raw: object) -> RecallAnswer:
        if not isinstance(raw, dict) or set(raw) - {"text", "points"} or "points" not in raw:
            raise InferlabError(f"answer to {self.id!r} must be a mapping {{text: ..., points: [...]}}")
        points = raw["points"]
        n = len(self.key_points)
        if not isinstance(points, list) or any(_integer(p) not in range(n) for p in points):
            raise InferlabError(
                f"points of {self.id!r} must be a list of key-point indices from 0 to {n - 1}"
            )
        return RecallAnswer(str(raw.get("text") or ""), frozenset(_integer(p) for p in points))

    def expected(self) -> str:
        return f"{len(self.key_points)}/{len(self.key_points)} key points"

    def correction(self, had: frozenset[int] = frozenset()) -> str:
        missed = [f"- {p}" for i, p in enumerate(self.key_points) if i not in had]
        return "Key points missed:\n\n" + "\n".join(missed) + f"\n\nModel answer: {self.model_answer}"

    def grade(self, answer: RecallAnswer) -> Result:
        n, had = len(self.key_points), len(answer.points)
        correction = "" if had == n else self.correction(answer.points)
        given = f"{had}/{n} key points"
        return Result(self.id, had / n, given, self.expected(), correction, answer.text.strip())


Question = Choice | Line | Numeric | Recall


@dataclass(frozen=True, slots=True)
class Quiz:
    lesson: int
    questions: tuple[Question, ...]

    def question(self, question_id: str) -> Question:
        for q in self.questions:
            if q.id == question_id:
                return q
        raise KeyError(question_id)


def _integer(raw: object) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and raw.strip().isdigit():
        return int(raw.strip())
    return None


def load_quiz(lesson: Lesson) -> Quiz:
    """The lesson's quiz; InferlabError if it has none, ValueError if its data is malformed."""
    f = lesson.file("quiz.yaml")
    if not f.is_file():
        raise InferlabError(f"lesson {lesson.number} has no quiz yet")
    data = yaml.safe_load(f.read_text(encoding="utf-8")) or {}
    questions = tuple(_question(lesson, q) for q in data.get("questions", []))
    ids = [q.id for q in questions]
    if len(set(ids)) != len(ids):
        raise ValueError(f"lesson {lesson.number}: quiz question ids are not unique")
    for q in questions:  # derive every answer now: a drifted quiz fails here, not mid-quiz
        if isinstance(q, Line | Numeric):
            q.answer()
    return Quiz(lesson.number, questions)


def _question(lesson: Lesson, q: dict) -> Question:
    kind, qid = q.get("kind"), q["id"]
    where = f"lesson {lesson.number}, quiz question {qid!r}"

    def text(key: str) -> str:
        return expand(str(q.get(key) or "").strip(), where)

    if kind == "choice":
        options = tuple(expand(str(o), where) for o in q["options"])
        letters = [Choice.letter(i) for i in range(len(options))]
        if q["answer"] not in letters:
            raise ValueError(f"{where}: answer {q['answer']!r} is not an option's letter")
        return Choice(qid, text("prompt"), options, letters.index(q["answer"]), text("explanation"))
    if kind == "line":
        return Line(qid, text("prompt"), q["code"], q["match"], text("explanation"))
    if kind == "numeric":
        tol = q.get("tolerance") or {}
        return Numeric(
            qid,
            text("prompt"),
            str(q["answer_expr"]),
            q["units"],
            float(tol.get("rel", 1e-9)),
            float(tol.get("abs", 0.0)),
            text("explanation"),
        )
    if kind == "recall":
        if "recall" in q:
            r = next((r for r in lesson.recall if r.id == q["recall"]), None)
            if r is None:
                raise ValueError(f"{where}: no recall prompt {q['recall']!r}")
            return Recall(qid, r.prompt, r.answer, r.key_points)
        points = tuple(expand(str(p).strip(), where) for p in q["key_points"])
        return Recall(qid, text("prompt"), text("model_answer"), points)
    raise ValueError(f"{where}: unknown kind {kind!r}")
