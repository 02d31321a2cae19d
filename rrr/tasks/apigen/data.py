"""Where APIGen examples come from: the hub dataset's constants and the seeded offline generator.

The hub dataset (``HUB_SOURCE``, gated) has a single split; ``APIGenTask`` declares it in ``single_split_sources``
and ``held_out_splits`` so that ``Task.load`` carves ``test`` (its last ``HUB_TEST_ROWS`` rows) and ``train`` (the
rest) once, for every task alike, and ``_HUB_GATED_HINT`` is the one line a user sees when the hub refuses.

The generator (``_generate_one``, 15 xlam-style ``_TOOLS``) needs no network, so tests, the demo and CI can train
and evaluate on APIGen offline: each example gets its own RNG from a stable hash of ``(seed, split, index)``
(``_example_rng``), 1-3 tools are offered (with distractors) and 1-3 reference calls are asked for in a templated
query that states every argument value. ``_as_json_text`` is the one representation of ``tools``/``answers`` every
source shares (JSON strings: Arrow cannot hold 60k different nested schemas).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: Rows of the single hub split that form the ``test`` split (the last ones); ``train`` is everything before them.
HUB_TEST_ROWS = 2_000

HUB_SOURCE = "Salesforce/xlam-function-calling-60k"
_HUB_GATED_HINT = (
    f"{HUB_SOURCE} is gated: accept the terms at https://huggingface.co/datasets/{HUB_SOURCE} and log in "
    "(`huggingface-cli login` or set HF_TOKEN); without the hub, use source='generated' or a local .jsonl/.parquet "
    "copy with columns query, tools, answers."
)


# ----------------------------------------------------------------------------------------------------------------
# Synthetic generator: xlam-style tools, templated queries
# ----------------------------------------------------------------------------------------------------------------
_CITIES = [
    "Paris", "Rome", "Tokyo", "Nairobi", "Lima", "Oslo", "Toronto", "Mumbai", "Sydney", "Cairo", "Berlin", "Madrid",
    "Seoul", "Austin", "Lisbon", "Dublin", "Hanoi", "Santiago",
]  # fmt: skip
_CURRENCIES = ["USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "INR", "BRL", "MXN"]
_SYMBOLS = ["AAPL", "MSFT", "GOOGL", "AMZN", "TSLA", "NVDA", "META", "NFLX", "IBM", "ORCL", "INTC", "AMD"]
_EXCHANGES = ["NASDAQ", "NYSE", "LSE", "TSX"]
_UNIT_PAIRS = [
    ("kilometers", "miles"), ("miles", "kilometers"), ("kilograms", "pounds"), ("pounds", "kilograms"),
    ("celsius", "fahrenheit"), ("fahrenheit", "celsius"), ("liters", "gallons"), ("feet", "meters"),
]  # fmt: skip
_SEARCHES = [
    "best hiking trails in Peru", "how to repot a fern", "history of the printing press", "cheap flights to Lisbon",
    "electric bike reviews", "sourdough starter recipe", "python asyncio tutorial", "solar panel efficiency",
    "marathon training plan", "origami crane instructions",
]  # fmt: skip
_TIMEZONES = [
    "Europe/Paris", "America/New_York", "Asia/Tokyo", "Australia/Sydney", "Africa/Nairobi", "America/Lima",
    "Asia/Kolkata", "Europe/London", "America/Los_Angeles", "Pacific/Auckland",
]  # fmt: skip
_PHRASES = [
    "good morning", "where is the train station", "thank you very much", "the meeting starts at noon",
    "I would like a coffee", "how much does this cost", "see you tomorrow", "the library is closed today",
]  # fmt: skip
_LANGUAGES = ["French", "Spanish", "German", "Japanese", "Italian", "Portuguese", "Korean", "Swahili"]
_MOVIES = [
    ("Inception", 2010), ("Spirited Away", 2001), ("The Matrix", 1999), ("Parasite", 2019), ("Amelie", 2001),
    ("Arrival", 2016), ("Casablanca", 1942), ("Whiplash", 2014), ("Roma", 2018), ("Up", 2009),
]  # fmt: skip
_CUISINES = ["Italian", "Thai", "Mexican", "Ethiopian", "Japanese", "Lebanese", "Indian", "vegan"]
_ARTISTS = ["Adele", "Radiohead", "Miles Davis", "Bjork", "Fela Kuti", "Taylor Swift", "Daft Punk", "Nina Simone"]
_AIRLINES = ["BA", "AF", "LH", "UA", "DL", "QF", "EK", "KL"]


def _param(kind: str, description: str, default: Any = None, optional: bool = False) -> dict:
    spec: dict[str, Any] = {"description": description, "type": kind + (", optional" if optional else "")}
    if optional:
        spec["default"] = default
    return spec


def _money(rng: random.Random) -> float | int:
    return rng.randint(5, 5000) if rng.random() < 0.5 else round(rng.uniform(1, 5000), 2)


def _fmt(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _join_words(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


@dataclass(frozen=True)
class _Tool:
    """One synthetic tool: its xlam schema, a sampler of arguments and a phrase that states every argument value."""

    name: str
    description: str
    parameters: dict
    sample: Callable[[random.Random], dict]
    phrase: Callable[[random.Random, dict], str]

    def schema(self) -> dict:
        return {"name": self.name, "description": self.description, "parameters": self.parameters}


def _maybe(rng: random.Random, probability: float, args: dict, key: str, value: Any) -> dict:
    if rng.random() < probability:
        args[key] = value
    return args


def _weather_phrase(rng: random.Random, a: dict) -> str:
    lead = rng.choice(
        ["get the current weather in {}", "check what the weather is like in {}", "fetch the weather for {}"]
    )
    return lead.format(a["city"]) + (f" in {a['units']} units" if "units" in a else "")


def _search_sample(rng: random.Random) -> dict:
    args = _maybe(rng, 0.4, {"query": rng.choice(_SEARCHES)}, "num_results", rng.choice([3, 5, 15, 20, 50]))
    return _maybe(rng, 0.35, args, "safe_search", rng.random() < 0.5)


def _restaurant_sample(rng: random.Random) -> dict:
    args = {"location": rng.choice(_CITIES), "cuisine": rng.choice(_CUISINES)}
    return _maybe(rng, 0.35, _maybe(rng, 0.35, args, "max_price", rng.randint(1, 4)), "open_now", rng.random() < 0.6)


def _search_phrase(rng: random.Random, a: dict) -> str:
    text = f"search the web for '{a['query']}'"
    extras = []
    if "num_results" in a:
        extras.append(f"showing {a['num_results']} results")
    if "safe_search" in a:
        extras.append("with safe search " + ("on" if a["safe_search"] else "off"))
    return text + (" " + " ".join(extras) if extras else "")


def _restaurant_phrase(rng: random.Random, a: dict) -> str:
    text = f"find {a['cuisine']} restaurants in {a['location']}"
    if "max_price" in a:
        text += f" with a price level of at most {a['max_price']}"
    if "open_now" in a:
        text += " that are open right now" if a["open_now"] else " including ones that are closed right now"
    return text


def _sort_phrase(rng: random.Random, a: dict) -> str:
    text = f"sort the numbers {_join_words([str(x) for x in a['numbers']])}"
    if "descending" in a:
        text += " in descending order" if a["descending"] else " in ascending order"
    return text


_TOOLS: tuple[_Tool, ...] = (
    _Tool(
        "get_current_weather",
        "Returns the current weather conditions for a city.",
        {
            "city": _param("str", "Name of the city, e.g. 'Paris'."),
            "units": _param("str", "Unit system, 'metric' or 'imperial'.", "metric", optional=True),
        },
        lambda r: _maybe(r, 0.35, {"city": r.choice(_CITIES)}, "units", r.choice(["metric", "imperial"])),
        _weather_phrase,
    ),
    _Tool(
        "convert_currency",
        "Converts an amount of money from one currency to another at the latest exchange rate.",
        {
            "amount": _param("float", "The amount of money to convert."),
            "from_currency": _param("str", "ISO 4217 code of the source currency, e.g. 'USD'."),
            "to_currency": _param("str", "ISO 4217 code of the target currency, e.g. 'EUR'."),
        },
        lambda r: dict(zip(("amount", "from_currency", "to_currency"), (_money(r), *r.sample(_CURRENCIES, 2)))),
        lambda r, a: r.choice(["convert {} {} to {}", "find out how much {} {} is worth in {}"]).format(
            _fmt(a["amount"]), a["from_currency"], a["to_currency"]
        ),
    ),
    _Tool(
        "get_stock_price",
        "Fetches the latest trading price of a stock.",
        {
            "symbol": _param("str", "Ticker symbol, e.g. 'AAPL'."),
            "exchange": _param("str", "Stock exchange code.", "NASDAQ", optional=True),
        },
        lambda r: _maybe(r, 0.3, {"symbol": r.choice(_SYMBOLS)}, "exchange", r.choice(_EXCHANGES)),
        lambda r, a: (
            r.choice(["look up the latest stock price of {}", "get the current share price for {}"]).format(a["symbol"])
            + (f" on the {a['exchange']} exchange" if "exchange" in a else "")
        ),
    ),
    _Tool(
        "convert_units",
        "Converts a measurement from one unit to another.",
        {
            "value": _param("float", "The quantity to convert."),
            "from_unit": _param("str", "Unit of the given value, e.g. 'kilometers'."),
            "to_unit": _param("str", "Unit to convert to, e.g. 'miles'."),
        },
        lambda r: dict(
            zip(
                ("value", "from_unit", "to_unit"),
                (r.randint(1, 500) if r.random() < 0.5 else round(r.uniform(0.5, 500), 1), *r.choice(_UNIT_PAIRS)),
            )
        ),
        lambda r, a: f"convert {_fmt(a['value'])} {a['from_unit']} to {a['to_unit']}",
    ),
    _Tool(
        "web_search",
        "Searches the web and returns a list of result pages.",
        {
            "query": _param("str", "The search query."),
            "num_results": _param("int", "Number of results to return.", 10, optional=True),
            "safe_search": _param("bool", "Whether to filter explicit results.", True, optional=True),
        },
        _search_sample,
        _search_phrase,
    ),
    _Tool(
        "get_time_in_timezone",
        "Returns the current local time in an IANA time zone.",
        {"timezone": _param("str", "IANA time zone name, e.g. 'Europe/Paris'.")},
        lambda r: {"timezone": r.choice(_TIMEZONES)},
        lambda r, a: r.choice(["tell me the current time in the {} time zone", "get the local time for {}"]).format(
            a["timezone"]
        ),
    ),
    _Tool(
        "calculate_mortgage_payment",
        "Computes the monthly payment of a fixed-rate mortgage.",
        {
            "principal": _param("float", "The loan amount."),
            "annual_rate": _param("float", "Annual interest rate in percent."),
            "years": _param("int", "Loan term in years."),
        },
        lambda r: {
            "principal": r.choice([100000, 250000, 320000, 415000.5, 180000]),
            "annual_rate": r.choice([3.5, 4.25, 5.0, 6.1, 2.75, 7]),
            "years": r.choice([10, 15, 20, 25, 30]),
        },
        lambda r, a: (
            f"calculate the monthly payment on a {_fmt(a['principal'])} loan at {_fmt(a['annual_rate'])}% annual "
            f"interest over {a['years']} years"
        ),
    ),
    _Tool(
        "translate_text",
        "Translates text into another language.",
        {
            "text": _param("str", "The text to translate."),
            "target_language": _param("str", "Language to translate into, e.g. 'French'."),
            "source_language": _param("str", "Language of the text; detected when omitted.", "auto", optional=True),
        },
        lambda r: _maybe(
            r, 0.3, {"text": r.choice(_PHRASES), "target_language": r.choice(_LANGUAGES)}, "source_language", "English"
        ),
        lambda r, a: (
            f"translate '{a['text']}' into {a['target_language']}"
            + (f" from {a['source_language']}" if "source_language" in a else "")
        ),
    ),
    _Tool(
        "get_movie_details",
        "Fetches plot, cast and ratings of a movie.",
        {
            "title": _param("str", "The movie title."),
            "year": _param("int", "Release year, to disambiguate remakes.", None, optional=True),
        },
        lambda r: (lambda m: _maybe(r, 0.4, {"title": m[0]}, "year", m[1]))(r.choice(_MOVIES)),
        lambda r, a: (
            f"fetch details about the movie '{a['title']}'" + (f" released in {a['year']}" if "year" in a else "")
        ),
    ),
    _Tool(
        "find_restaurants",
        "Finds restaurants near a location.",
        {
            "location": _param("str", "City or neighbourhood."),
            "cuisine": _param("str", "Type of food, e.g. 'Thai'."),
            "max_price": _param("int", "Highest price level from 1 (cheap) to 4 (expensive).", 4, optional=True),
            "open_now": _param("bool", "Only return restaurants that are open now.", False, optional=True),
        },
        _restaurant_sample,
        _restaurant_phrase,
    ),
    _Tool(
        "calculate_average",
        "Computes the arithmetic mean of a list of numbers.",
        {"numbers": _param("List[float]", "The numbers to average.")},
        lambda r: {
            "numbers": [
                r.randint(0, 100) if r.random() < 0.6 else round(r.uniform(0, 100), 1) for _ in range(r.randint(3, 6))
            ]
        },
        lambda r, a: f"compute the average of {_join_words([_fmt(x) for x in a['numbers']])}",
    ),
    _Tool(
        "get_top_tracks",
        "Lists the most popular tracks of a music artist.",
        {
            "artist": _param("str", "Name of the artist."),
            "limit": _param("int", "Maximum number of tracks.", 10, optional=True),
        },
        lambda r: _maybe(r, 0.5, {"artist": r.choice(_ARTISTS)}, "limit", r.choice([3, 5, 20, 25])),
        lambda r, a: (
            f"list the top {a['limit']} tracks by {a['artist']}"
            if "limit" in a
            else f"list the top tracks by {a['artist']}"
        ),
    ),
    _Tool(
        "is_prime",
        "Checks whether an integer is a prime number.",
        {"n": _param("int", "The integer to test.")},
        lambda r: {"n": r.randint(2, 100_000)},
        lambda r, a: r.choice(["check whether {} is a prime number", "tell me if {} is prime"]).format(a["n"]),
    ),
    _Tool(
        "sort_numbers",
        "Sorts a list of integers.",
        {
            "numbers": _param("List[int]", "The integers to sort."),
            "descending": _param("bool", "Sort from largest to smallest.", False, optional=True),
        },
        lambda r: _maybe(
            r, 0.6, {"numbers": [r.randint(-50, 200) for _ in range(r.randint(3, 7))]}, "descending", r.random() < 0.5
        ),
        _sort_phrase,
    ),
    _Tool(
        "get_flight_status",
        "Returns the status (on time, delayed, cancelled) of a flight on a given date.",
        {
            "flight_number": _param("str", "IATA flight number, e.g. 'BA283'."),
            "date": _param("str", "Departure date in YYYY-MM-DD format."),
        },
        lambda r: {
            "flight_number": f"{r.choice(_AIRLINES)}{r.randint(10, 2999)}",
            "date": f"2025-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}",
        },
        lambda r, a: f"check the status of flight {a['flight_number']} on {a['date']}",
    ),
)


def _example_rng(seed: int, split: str, index: int) -> random.Random:
    """A per-example RNG from a stable hash (never ``hash()``, which is salted per process)."""
    digest = hashlib.sha256(f"apigen|{split}|{seed}|{index}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _generate_one(rng: random.Random) -> tuple[str, list[dict], list[dict]]:
    n_calls = rng.choices([1, 2, 3], weights=[0.5, 0.35, 0.15])[0]
    first, second, third = rng.sample(range(len(_TOOLS)), 3)
    if n_calls == 1:
        plan = [first]
    elif n_calls == 2:
        plan = [first, first] if rng.random() < 0.5 else [first, second]
    else:
        plan = rng.choice([[first, first, first], [first, first, second], [first, second, third]])
    needed = list(dict.fromkeys(plan))
    others = [i for i in range(len(_TOOLS)) if i not in needed]
    offered = needed + rng.sample(others, rng.randint(len(needed), 3) - len(needed))
    rng.shuffle(offered)

    calls: list[dict] = []
    clauses: list[str] = []
    for tool_index in plan:
        tool = _TOOLS[tool_index]
        for _ in range(20):  # parallel calls of one tool must differ, or the "parallel" call is a duplicate
            arguments = tool.sample(rng)
            if all(c["name"] != tool.name or c["arguments"] != arguments for c in calls):
                break
        else:
            continue
        calls.append({"name": tool.name, "arguments": arguments})
        clauses.append(tool.phrase(rng, arguments))
    if len(clauses) == 1:
        sentence = clauses[0]
    elif len(clauses) == 2:
        sentence = f"{clauses[0]}, and also {clauses[1]}"
    else:
        sentence = f"{', '.join(clauses[:-1])}, and finally {clauses[-1]}"
    query = sentence[0].upper() + sentence[1:] + "."
    return query, [_TOOLS[i].schema() for i in offered], calls


def _as_json_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
