"""A realistic synthetic organisation for demos, benchmarks and tests (pure, deterministic).

``synthetic_organisation(n_mentees, n_mentors, seed)`` returns ``(people, enrollments)``:

* departments with realistic sizes (Engineering largest ... Legal smallest) grouped in divisions;
* a level pyramid 1..20 (more juniors; mentors drawn 1-4 levels above the mentee distribution);
* a manager tree per department: each person's manager is someone in the same department one
  or more levels up (the most senior have none); about 0.3 % of manager ids dangle (point to
  people who are not in the data), as real HR exports do;
* time zones on every continent with realistic head-count weights, working hours mostly
  08:00-17:00 / 09:00-18:00, some early/late shifts and some that cross midnight;
* languages: English for most, plus the local language of the office (ja, de, fr, es, pt, zh,
  hi, ko, ...), a few people without English;
* skills from a vocabulary of ~300 (department-specific and general, popularity skewed),
  4-10 skills each with proficiency growing with level, 3-7 goals each (skills they lack);
* mentor capacity 1-3.

Everything comes from one ``numpy`` generator seeded with ``seed``; 100k x 50k takes a few
seconds. ``person_to_api_payload`` turns a Person into the ``PUT /v1/people`` JSON shape.
"""

from __future__ import annotations

import numpy as np

from .overlap import format_hhmm
from .problem import Enrollment, Goal, Person, Skill

DEPARTMENTS = (
    # name, division, weight
    ("Engineering", "Technology", 0.24),
    ("Product", "Technology", 0.07),
    ("Design", "Technology", 0.05),
    ("Data", "Technology", 0.06),
    ("Sales", "Go-to-market", 0.14),
    ("Marketing", "Go-to-market", 0.08),
    ("Support", "Go-to-market", 0.10),
    ("Operations", "Corporate", 0.10),
    ("Finance", "Corporate", 0.07),
    ("HR", "Corporate", 0.05),
    ("Legal", "Corporate", 0.04),
)

TIME_ZONES = (
    # zone, weight, local language (besides English)
    ("America/New_York", 0.11, None),
    ("America/Chicago", 0.05, None),
    ("America/Denver", 0.02, None),
    ("America/Los_Angeles", 0.08, None),
    ("America/Toronto", 0.04, "fr"),
    ("America/Mexico_City", 0.03, "es"),
    ("America/Bogota", 0.01, "es"),
    ("America/Sao_Paulo", 0.04, "pt"),
    ("America/Argentina/Buenos_Aires", 0.01, "es"),
    ("Europe/London", 0.08, None),
    ("Europe/Dublin", 0.01, None),
    ("Europe/Berlin", 0.06, "de"),
    ("Europe/Paris", 0.04, "fr"),
    ("Europe/Madrid", 0.02, "es"),
    ("Europe/Amsterdam", 0.02, "nl"),
    ("Europe/Warsaw", 0.02, "pl"),
    ("Europe/Stockholm", 0.01, "sv"),
    ("Africa/Lagos", 0.02, None),
    ("Africa/Nairobi", 0.01, "sw"),
    ("Africa/Johannesburg", 0.02, None),
    ("Africa/Cairo", 0.01, "ar"),
    ("Asia/Dubai", 0.01, "ar"),
    ("Asia/Kolkata", 0.06, "hi"),
    ("Asia/Singapore", 0.04, "zh"),
    ("Asia/Manila", 0.02, "tl"),
    ("Asia/Shanghai", 0.03, "zh"),
    ("Asia/Seoul", 0.01, "ko"),
    ("Asia/Tokyo", 0.04, "ja"),
    ("Australia/Sydney", 0.03, None),
    ("Australia/Melbourne", 0.01, None),
    ("Pacific/Auckland", 0.01, None),
)

WORKING_HOURS = (
    # start, end (minutes), weight; end <= start crosses midnight
    (8 * 60, 17 * 60, 0.36),
    (9 * 60, 18 * 60, 0.34),
    (9 * 60, 17 * 60, 0.14),
    (7 * 60, 15 * 60, 0.05),
    (14 * 60, 22 * 60, 0.04),
    (18 * 60, 2 * 60, 0.03),
    (22 * 60, 6 * 60, 0.04),
)

_DEPARTMENT_SKILLS = {
    "Engineering": "python java go rust typescript kubernetes distributed systems system design code review testing "
    "debugging databases cloud architecture security engineering ci/cd observability performance tuning api design "
    "mobile development frontend development",
    "Product": "product strategy roadmapping user research prioritisation product analytics experimentation "
    "requirements writing market sizing pricing go-to-market planning stakeholder alignment product discovery",
    "Design": "interaction design visual design prototyping design systems usability testing accessibility "
    "information architecture illustration motion design user interviews design critique",
    "Data": "sql statistics machine learning data visualisation data engineering experimentation design "
    "forecasting causal inference dashboarding data modelling deep learning data governance",
    "Sales": "negotiation prospecting account management closing enterprise sales pipeline management "
    "sales forecasting solution selling objection handling territory planning partnerships",
    "Marketing": "content marketing seo brand strategy campaign management copywriting social media "
    "marketing analytics event marketing product marketing demand generation public relations",
    "Support": "customer empathy troubleshooting ticket triage knowledge base writing escalation management "
    "customer success onboarding support operations de-escalation",
    "Operations": "process improvement supply chain vendor management project management lean six sigma "
    "procurement logistics workplace operations business continuity",
    "Finance": "financial modelling budgeting accounting fp&a tax treasury audit financial reporting "
    "cost analysis investor relations",
    "HR": "recruiting talent development compensation employee relations performance management "
    "organisational design learning and development hr analytics diversity and inclusion",
    "Legal": "contract drafting compliance privacy law intellectual property employment law litigation "
    "regulatory affairs risk assessment corporate governance",
}
_MULTI_WORD = (
    "distributed systems|system design|code review|databases|cloud architecture|security engineering|"
    "performance tuning|api design|mobile development|frontend development|product strategy|user research|"
    "product analytics|requirements writing|market sizing|go-to-market planning|stakeholder alignment|"
    "product discovery|interaction design|visual design|design systems|usability testing|information architecture|"
    "motion design|user interviews|design critique|machine learning|data visualisation|data engineering|"
    "experimentation design|causal inference|data modelling|deep learning|data governance|account management|"
    "enterprise sales|pipeline management|sales forecasting|solution selling|objection handling|territory planning|"
    "content marketing|brand strategy|campaign management|social media|marketing analytics|event marketing|"
    "product marketing|demand generation|public relations|customer empathy|ticket triage|knowledge base writing|"
    "escalation management|customer success|support operations|process improvement|supply chain|"
    "vendor management|project management|lean six sigma|workplace operations|business continuity|"
    "financial modelling|financial reporting|cost analysis|investor relations|talent development|"
    "employee relations|performance management|organisational design|learning and development|hr analytics|"
    "diversity and inclusion|contract drafting|privacy law|intellectual property|employment law|"
    "regulatory affairs|risk assessment|corporate governance"
).split("|")
_GENERAL_SKILLS = (
    "public speaking",
    "leadership",
    "people management",
    "coaching",
    "giving feedback",
    "receiving feedback",
    "strategic thinking",
    "decision making",
    "time management",
    "writing",
    "presentation skills",
    "conflict resolution",
    "influencing without authority",
    "cross-cultural communication",
    "career planning",
    "networking",
    "delegation",
    "hiring",
    "executive presence",
    "facilitation",
    "storytelling",
    "change management",
    "resilience",
    "prioritisation",
    "critical thinking",
    "budget ownership",
    "remote collaboration",
    "mentoring others",
    "emotional intelligence",
    "systems thinking",
    "first-time management",
    "managing managers",
    "work-life balance",
    "personal branding",
    "negotiation",
)
_SPECIALISMS = ("advanced", "applied", "modern", "practical")


def _split_skills(text: str) -> list[str]:
    names, rest = [], f" {text} "
    for phrase in sorted(_MULTI_WORD, key=len, reverse=True):
        if f" {phrase} " in rest:
            names.append(phrase)
            rest = rest.replace(f" {phrase} ", " ")
    names += rest.split()
    return sorted(set(names))


def skill_vocabulary() -> tuple[list[str], dict[str, list[int]]]:
    """(all skill names, department -> indices of its own skills). ~300 names."""
    names: list[str] = []
    own: dict[str, list[int]] = {}
    for dept, text in _DEPARTMENT_SKILLS.items():
        base = _split_skills(text)
        # A few specialisations per department make the vocabulary realistically long-tailed.
        extended = base + [f"{_SPECIALISMS[k % len(_SPECIALISMS)]} {name}" for k, name in enumerate(base[:12])]
        own[dept] = []
        for name in extended:
            if name not in names:
                names.append(name)
            own[dept].append(names.index(name))
    for name in _GENERAL_SKILLS:
        if name not in names:
            names.append(name)
    return names, own


def _pick(rng: np.random.Generator, weights, size: int) -> np.ndarray:
    p = np.asarray(weights, float)
    return rng.choice(len(p), size=size, p=p / p.sum())


def synthetic_organisation(
    n_mentees: int,
    n_mentors: int,
    seed: int = 0,
    *,
    n_both: int = 0,
    id_prefix: str = "p",
) -> tuple[dict[str, Person], tuple[Enrollment, ...]]:
    """People (id -> Person) and enrollments: n_mentees mentees, n_mentors mentors (capacity 1-3),
    and ``n_both`` extra people enrolled as both (capacity 1-2)."""
    rng = np.random.default_rng(seed)
    n = n_mentees + n_mentors + n_both
    width = max(6, len(str(n)))
    ids = [f"{id_prefix}{k:0{width}d}" for k in range(n)]
    role = np.array(["mentee"] * n_mentees + ["mentor"] * n_mentors + ["both"] * n_both)

    # Level pyramid: juniors are the majority; mentors sit 1-4 levels above it.
    pyramid = 0.8 ** np.arange(16)
    level = 1 + _pick(rng, pyramid, n)
    senior = role != "mentee"
    level[senior] += rng.integers(1, 5, senior.sum())
    level = np.minimum(level, 20)

    dept = _pick(rng, [d[2] for d in DEPARTMENTS], n)
    zone = _pick(rng, [z[1] for z in TIME_ZONES], n)
    hours = _pick(rng, [h[2] for h in WORKING_HOURS], n)

    # Manager tree per department: someone one or more levels up (among the next 40 above).
    manager = np.full(n, -1, np.int64)
    for d in range(len(DEPARTMENTS)):
        members = np.flatnonzero(dept == d)
        order = members[np.argsort(level[members], kind="stable")]
        levels_sorted = level[order]
        first_above = np.searchsorted(levels_sorted, level[order], "right")
        room = order.size - first_above
        has_boss = room > 0
        offset = (rng.random(order.size) * np.minimum(room, 40)).astype(np.int64)
        manager[order[has_boss]] = order[(first_above + offset)[has_boss]]
    dangling = rng.random(n) < 0.003

    # Languages: English for most, the office language for many, a few without English.
    english = rng.random(n) < 0.93
    local_roll = rng.random(n)

    # Skills: popularity-skewed picks from the department's own list and the general list.
    names, own = skill_vocabulary()
    general = [names.index(s) for s in _GENERAL_SKILLS]
    n_skills = rng.integers(4, 11, n)
    n_goals = rng.integers(3, 8, n)
    skill_cache = {(s, lv): Skill(names[s], lv) for s in range(len(names)) for lv in range(1, 6)}
    goal_cache = {(s, pr): Goal(names[s], pr) for s in range(len(names)) for pr in (1, 2, 3)}
    zipf_general = 1.0 / np.arange(1, len(general) + 1) ** 0.8
    zipf_general /= zipf_general.sum()
    all_ids = np.arange(len(names))
    zipf_all = 1.0 / np.arange(1, len(names) + 1) ** 0.6
    zipf_all = zipf_all[rng.permutation(len(names))]
    zipf_all /= zipf_all.sum()
    draws_own = rng.random((n, 10))
    draws_general = rng.choice(len(general), size=(n, 10), p=zipf_general)
    draws_goal = rng.choice(all_ids, size=(n, 14), p=zipf_all)
    own_share = rng.random((n, 10)) < 0.6
    prof_noise = rng.integers(-1, 2, (n, 10))
    priorities = rng.integers(1, 4, (n, 14))
    capacity = np.where(role == "mentor", rng.integers(1, 4, n), rng.integers(1, 3, n))

    people: dict[str, Person] = {}
    dept_names = [d[0] for d in DEPARTMENTS]
    divisions = [d[1] for d in DEPARTMENTS]
    for k in range(n):
        d = int(dept[k])
        own_list = own[dept_names[d]]
        lv = int(level[k])
        base_prof = 1 + min(3, lv // 4)
        skills: dict[int, int] = {}
        for j in range(int(n_skills[k])):
            if own_share[k, j]:
                s = own_list[int(draws_own[k, j] * len(own_list))]
            else:
                s = general[int(draws_general[k, j])]
            skills[s] = max(skills.get(s, 0), int(min(5, max(1, base_prof + prof_noise[k, j]))))
        goals: dict[int, int] = {}
        for j in range(14):
            if len(goals) >= n_goals[k]:
                break
            s = int(draws_goal[k, j])
            if s not in skills and s not in goals:
                goals[s] = int(priorities[k, j])
        tz_name, _, local = TIME_ZONES[int(zone[k])]
        languages = []
        if english[k] or local is None:
            languages.append("en")
        if local is not None and (not english[k] or local_roll[k] < 0.6):
            languages.append(local)
        start, end, _ = WORKING_HOURS[int(hours[k])]
        boss = int(manager[k])
        if dangling[k]:
            manager_id = f"ext-{k:07d}"
        else:
            manager_id = ids[boss] if boss >= 0 else None
        people[ids[k]] = Person(
            id=ids[k],
            level=lv,
            time_zone=tz_name,
            work_start_min=start,
            work_end_min=end,
            department=dept_names[d],
            division=divisions[d],
            manager_id=manager_id,
            languages=tuple(languages),
            skills=tuple(skill_cache[(s, p)] for s, p in sorted(skills.items())),
            goals=tuple(goal_cache[(s, p)] for s, p in sorted(goals.items(), key=lambda kv: (kv[1], kv[0]))),
        )
    enrollments = tuple(
        Enrollment(person_id=ids[k], role=str(role[k]), capacity=int(capacity[k]) if role[k] != "mentee" else None)
        for k in range(n)
    )
    return people, enrollments


_TITLE_BANDS = ((3, "Associate"), (6, ""), (9, "Senior"), (12, "Staff"), (15, "Principal"), (18, "Director of"), (20, "VP,"))
_ROLE_NOUN = {
    "Engineering": "Engineer",
    "Product": "Product Manager",
    "Design": "Designer",
    "Data": "Data Scientist",
    "Sales": "Account Executive",
    "Marketing": "Marketing Manager",
    "Support": "Support Specialist",
    "Operations": "Operations Analyst",
    "Finance": "Financial Analyst",
    "HR": "People Partner",
    "Legal": "Counsel",
}


def _title(person: Person) -> str:
    dept = person.department or "General"
    band = next(name for top, name in _TITLE_BANDS if person.level <= top)
    if band in ("Director of", "VP,"):
        return f"{band} {dept}"
    noun = _ROLE_NOUN.get(dept, "Specialist")
    return f"{band} {noun}".strip()


def person_to_api_payload(person: Person) -> dict:
    """The ``PUT /v1/people/{external_id}`` body for a Person (names and emails invented)."""
    digits = "".join(ch for ch in person.id if ch.isdigit()).lstrip("0") or "0"
    return {
        "external_id": person.id,
        "display_name": f"Person {digits}",
        "email": f"{person.id.lower()}@example.com",
        "title": _title(person),
        "department": person.department,
        "division": person.division,
        "level": person.level,
        "manager_external_id": person.manager_id,
        "time_zone": person.time_zone,
        "working_hours": {
            "start": format_hhmm(person.work_start_min),
            "end": format_hhmm(person.work_end_min),
            # The API asks night shifts (22:00-06:00) to say so, to catch swapped start/end.
            "crosses_midnight": person.work_end_min <= person.work_start_min,
        },
        "languages": list(person.languages),
        "skills": [{"name": s.name, "level": s.level} for s in person.skills],
        "goals": [{"skill": g.skill, "priority": g.priority} for g in person.goals],
        "active": True,
    }
