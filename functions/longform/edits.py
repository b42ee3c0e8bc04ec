"""Edits of a finished job: the scenes of its next version, which of them can be reused, and
which must be generated (and paid for).

An edit is the new version's ordered scene list (``EditRequest.scenes``): an entry ``from`` a scene
of the current version keeps that scene, perhaps with a new prompt, seed or negative prompt, or
``regenerate`` (a new seed); an entry without ``from`` is a new scene. Deleting is leaving a scene
out, reordering is changing the order.

A segment is identified by everything that determines it (``scene_identity``): the model, prompt,
seed, negative prompt, length, aspect ratio, resolution, audio and, when chained, its first frame —
named by the identity of the segment whose last frame it started from (``Segment.after``). Each
scene of the new version, in order:

1. a scene kept unchanged whose first frame is the same as when it was made (unchained, the first
   of the video, or after the same segment as before) is reused: nothing changed at all;
2. a scene whose identity some segment of the job already has (any version's) reuses that file;
3. a scene kept unchanged after a new join (chained: the scene before it changed, or it moved) is
   reused when the edit's ``continuity`` is ``keep``: the join becomes a visible cut;
4. every other scene is generated: changed, new, regenerated, or after a new join when the edit
   asks to ``regenerate`` for continuity (and so every scene after it, whose first frames change).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictBool, StrictInt, StringConstraints

from .errors import InvalidRequest
from .job import Job, Segment, SegmentStatus
from .request import MAX_PROMPT_CHARS, MAX_PROMPTS, MAX_SEED, WIRE, Prompt, VideoRequest, validated

Continuity = Literal["keep", "regenerate"]
CONTINUITIES: tuple[Continuity, ...] = ("keep", "regenerate")
_ID = r"^[A-Za-z0-9_-]{1,128}$"


class SceneEdit(BaseModel):
    """One scene of the new version: ``from`` a scene of the current one (0-based), or new."""

    model_config = WIRE

    source: Annotated[StrictInt, Field(ge=0)] | None = Field(default=None, alias="from")
    prompt: Prompt | None = None
    seed: Annotated[StrictInt, Field(ge=0, le=MAX_SEED)] | None = None
    negative_prompt: (
        Annotated[str, StringConstraints(strict=True, strip_whitespace=True, max_length=MAX_PROMPT_CHARS)] | None
    ) = None
    regenerate: StrictBool = False  # make it again as it is, with a new seed (unless one is given)


class EditRequest(BaseModel):
    model_config = WIRE

    job_id: Annotated[str, StringConstraints(strict=True, pattern=_ID)]
    scenes: Annotated[list[SceneEdit], Field(min_length=1, max_length=MAX_PROMPTS)]
    continuity: Continuity = "keep"  # at a changed join of a chained job: a cut, or regenerate what follows
    dry_run: StrictBool = False  # only say what each continuity choice would make and cost
    request_id: Annotated[str, StringConstraints(strict=True, pattern=_ID)] | None = None


def validate_edit(data: Any) -> EditRequest:
    """The edit, or InvalidRequest naming each field that breaks a rule (``scenes[2].prompt``)."""
    return validated(EditRequest, data, "must be an object with a 'jobId' and a 'scenes' list")


@dataclass(frozen=True)
class Made:
    """A segment the job already has: its file, its identity, and what its first frame was."""

    uri: str
    identity: str
    after: str | None


@dataclass(frozen=True)
class Source:
    """A scene of the current version, as an edit may keep it."""

    prompt: str
    seed: int | None
    negative_prompt: str | None
    made: Made | None  # None: the scene has no usable file (it failed, or its media was removed)


@dataclass(frozen=True)
class PlannedScene:
    prompt: str
    seed: int | None
    negative_prompt: str | None
    identity: str
    after: str | None  # the identity of the segment whose last frame it starts from (chained)
    reuse: Made | None  # None: to be generated
    cut: bool = False  # kept after a new join: its first frame is not the last frame before it


@dataclass(frozen=True)
class Plan:
    """What a version will be: its scenes in order, and what the edit changed."""

    scenes: list[PlannedScene]
    changes: list[str]
    continuity: Continuity

    @property
    def generate(self) -> list[int]:
        return [i for i, s in enumerate(self.scenes) if s.reuse is None]

    @property
    def reuse(self) -> list[int]:
        return [i for i, s in enumerate(self.scenes) if s.reuse is not None]

    @property
    def cuts(self) -> list[int]:
        return [i for i, s in enumerate(self.scenes) if s.cut]

    def to_json(self, segment_seconds: int, scene_usd: float) -> dict[str, Any]:
        """The plan as the callable answers it: indices in the new order, the seconds to make
        and what making them costs (``scene_usd`` a scene)."""
        made = len(self.generate)
        return {
            "generate": self.generate,
            "reuse": self.reuse,
            "cuts": self.cuts,
            "seconds": made * segment_seconds,
            "costUsd": round(made * scene_usd, 6),
            "changes": self.changes,
        }


def scene_identity(
    model: str,
    request: VideoRequest,
    prompt: str,
    seed: int | None,
    negative_prompt: str | None,
    after: str | None,
) -> str:
    """What determines a segment, as one hash: two scenes with the same identity are the same
    video (with ``seed`` None, as the same request to the model would be)."""
    determines = {
        "model": model,
        "prompt": prompt,
        "seed": seed,
        "negativePrompt": negative_prompt or None,
        "seconds": request.segment_seconds,
        "aspectRatio": request.aspect_ratio,
        "resolution": request.resolution,
        "audio": request.generate_audio,
        "firstFrame": after,
    }
    return hashlib.sha256(json.dumps(determines, sort_keys=True).encode()).hexdigest()[:32]


def first_identities(model: str, request: VideoRequest) -> list[tuple[str, str | None]]:
    """(identity, after) of each scene of a new job: chained, each starts from the one before."""
    out: list[tuple[str, str | None]] = []
    for prompt in request.prompts:
        after = out[-1][0] if request.chain and out else None
        out.append((scene_identity(model, request, prompt, request.seed, request.negative_prompt, after), after))
    return out


def identify(job: Job, model: str) -> None:
    """Give each scene of a job made before edits existed (or a new job) its identity: the job's
    first version, each scene chained to the one before, made by ``model``."""
    if all(s.identity for s in job.segments) or job.version > 1:
        return
    request = job.video_request
    for segment, (identity, after) in zip(job.segments, first_identities(model, request), strict=True):
        segment.identity, segment.after = identity, after


def plans_for(job: Job, edit: EditRequest, model: str, continuities: tuple[Continuity, ...]) -> dict[str, Plan]:
    """The next version of ``job`` that ``edit`` makes, for each of the ``continuities`` asked
    (the edit's own, or both to price them)."""
    identify(job, model)
    edit = with_new_seeds(edit, f"{job.job_id}-v{job.version + 1}")
    sources = _sources(job)
    made = _made(job, sources)
    request = job.video_request
    return {c: plan_edit(edit, sources, made, model, request, job.version, c) for c in continuities}


def version_segments(plan: Plan, now: str) -> list[Segment]:
    """The new version's scenes: those reused already made, the others to be generated."""
    segments = []
    for i, scene in enumerate(plan.scenes):
        segment = Segment(
            index=i,
            prompt=scene.prompt,
            seed=scene.seed,
            negative_prompt=scene.negative_prompt,
            identity=scene.identity,
            after=scene.after,
        )
        if scene.reuse is not None:
            segment.status, segment.uri, segment.completed_at = SegmentStatus.COMPLETED, scene.reuse.uri, now
            segment.reused = True
        segments.append(segment)
    return segments


def _sources(job: Job) -> list[Source]:
    """The current version's scenes, as an edit may keep them."""
    kept = job.scene_media_removed_at is None

    def made(s: Segment) -> Made | None:
        if not (kept and s.status is SegmentStatus.COMPLETED and s.uri and s.identity):
            return None
        return Made(s.uri, s.identity, s.after)

    return [
        Source(s.prompt, job.scene_seed(i), job.scene_negative_prompt(i), made(s)) for i, s in enumerate(job.segments)
    ]


def _made(job: Job, sources: list[Source]) -> dict[str, Made]:
    """Every segment of the job still kept, by identity (the newest when two share one)."""
    found: dict[str, Made] = {}
    for version in job.versions:
        for scene in version.scenes:
            if scene.uri and scene.identity:
                found[scene.identity] = Made(scene.uri, scene.identity, scene.after)
    for source in sources:
        if source.made is not None:
            found[source.made.identity] = source.made
    return found


def plan_edit(
    edit: EditRequest,
    sources: list[Source],
    made: dict[str, Made],
    model: str,
    request: VideoRequest,
    version: int,
    continuity: Continuity | None = None,
) -> Plan:
    """The next version's scenes from the current version's ``sources`` and every segment the job
    has ``made`` (by identity). ``continuity`` overrides the edit's (to price both choices).
    Raises InvalidRequest for an entry that names no scene, uses one twice, or changes nothing."""
    continuity = continuity or edit.continuity
    _check(edit, sources, version)
    scenes: list[PlannedScene] = []
    for entry in edit.scenes:
        source = sources[entry.source] if entry.source is not None else None
        prompt = entry.prompt or (source.prompt if source else "")
        seed = _seed(entry, source, request)
        negative = entry.negative_prompt if entry.negative_prompt is not None else _negative(source, request)
        after = scenes[-1].identity if request.chain and scenes else None
        identity = scene_identity(model, request, prompt, seed, negative, after)
        same = source is not None and (prompt, seed, negative) == (source.prompt, source.seed, source.negative_prompt)
        kept = source.made if same and source is not None and not entry.regenerate else None
        if kept is not None and (not request.chain or kept.after == after or not scenes):
            scenes.append(PlannedScene(prompt, seed, negative, kept.identity, kept.after, kept))
        elif identity in made:
            scenes.append(PlannedScene(prompt, seed, negative, identity, after, made[identity]))
        elif kept is not None and continuity == "keep":
            scenes.append(PlannedScene(prompt, seed, negative, kept.identity, kept.after, kept, cut=True))
        else:
            scenes.append(PlannedScene(prompt, seed, negative, identity, after, None))
    changes = describe(edit, sources, scenes)
    if not changes:
        raise InvalidRequest("scenes", "the edit changes nothing: change, add, remove or reorder a scene")
    return Plan(scenes, changes, continuity)


def _check(edit: EditRequest, sources: list[Source], version: int) -> None:
    problems: list[tuple[str, str]] = []
    used: dict[int, int] = {}
    for i, entry in enumerate(edit.scenes):
        if entry.source is None:
            if entry.prompt is None:
                problems.append((f"scenes[{i}].prompt", "is required for a new scene (one without 'from')"))
        elif entry.source >= len(sources):
            rule = f"must name a scene of version {version}: 0 to {len(sources) - 1}"
            problems.append((f"scenes[{i}].from", rule))
        elif entry.source in used:
            rule = f"scene {entry.source} is already scenes[{used[entry.source]}]: a scene is used at most once"
            problems.append((f"scenes[{i}].from", rule))
        else:
            used[entry.source] = i
    if problems:
        raise InvalidRequest.from_problems(problems)


def with_new_seeds(edit: EditRequest, version: str) -> EditRequest:
    """The edit with a new seed for each scene to make again that names none, recorded on the
    scene so that its video can be made again. Drawn from the ``version`` it makes (job id and
    number) and the scene's place: a dry run shows the seed the edit will then use."""

    def seed(position: int) -> int:
        drawn = hashlib.sha256(f"{version}\n{position}".encode()).digest()
        return int.from_bytes(drawn[:8], "big") % (MAX_SEED + 1)

    scenes = [
        e.model_copy(update={"seed": seed(i)}) if e.regenerate and e.seed is None else e
        for i, e in enumerate(edit.scenes)
    ]
    return edit.model_copy(update={"scenes": scenes})


def _seed(entry: SceneEdit, source: Source | None, request: VideoRequest) -> int | None:
    if entry.seed is not None:
        return entry.seed
    return source.seed if source is not None else request.seed


def _negative(source: Source | None, request: VideoRequest) -> str | None:
    return source.negative_prompt if source is not None else request.negative_prompt


def describe(edit: EditRequest, sources: list[Source], scenes: list[PlannedScene]) -> list[str]:
    """What the edit changed, in words (scene numbers from 1, as a person counts them)."""
    changes: list[str] = []
    kept = [e.source for e in edit.scenes if e.source is not None]
    for i, (entry, scene) in enumerate(zip(edit.scenes, scenes, strict=True)):
        if entry.source is None:
            changes.append(f"scene {i + 1}: new")
            continue
        source, n = sources[entry.source], entry.source + 1
        if scene.prompt != source.prompt:
            changes.append(f"scene {n}: new prompt")
        if entry.regenerate:
            changes.append(f"scene {n}: made again (seed {scene.seed})")
        elif scene.seed != source.seed:
            changes.append(f"scene {n}: seed {scene.seed}")
        if scene.negative_prompt != source.negative_prompt:
            changes.append(f"scene {n}: new negative prompt")
    changes += [f"scene {k + 1}: deleted" for k in range(len(sources)) if k not in kept]
    if kept != sorted(kept):
        changes.append("scenes reordered: " + ", ".join(str(k + 1) for k in kept))
    return changes
