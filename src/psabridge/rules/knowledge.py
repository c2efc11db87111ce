"""Checklist step "Search the knowledge base for prior fixes" (and "Update the knowledge base article").

The impure side looks up resolved tickets in the store that share the ticket's error signature
(``rules.text.error_signature``), across every client of the MSP (same VPN client, same EDR agent, same M365 tenant
model often hit the same regressions), and counts the signature's repeats (``Knowledge``). While the ticket is open,
up to ``max_suggestions`` of them become ``prior_fixes``, and configured ``articles`` whose codes or words match
become ``article_match``. Prior tickets of other clients are only ever written into an internal note, and never into
a system a client owns (``ConnectionView.client_owned``: there only their KB ids are shown, or nothing, per
``other_clients_in_client_systems``). The ``repeat_threshold``-th ticket with one signature (the third, by default)
when no configured article matches and no prior fix cites a KB article raises ``write_article``: the third repeat of
an issue should not need fresh diagnosis.

What it cannot see: the KB itself (IT Glue, Hudu, Confluence): only the articles listed in rules.yaml and the KB ids
technicians wrote into resolutions; and symptoms that share no error code or quoted error text.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, JsonValue, PrivateAttr

from psabridge.rules.base import Code, Finding, PriorFix, Rule, RuleInput, RuleOutcome, RuleSettings
from psabridge.rules.text import Tokens, Words
from psabridge.settings import parse_duration

__all__ = ["KbArticle", "KnowledgeRule", "KnowledgeSettings"]

STEP = "Search the knowledge base for prior fixes"
UPDATE_STEP = "Update the knowledge base article"

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class KbArticle(BaseModel):
    """A knowledge-base article and the errors or symptoms it covers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, description="as technicians cite it, e.g. 'KB 4567'")
    title: str = Field(min_length=1)
    codes: list[str] = Field(default_factory=list, description="error codes it covers, as in error_codes")
    words: Words = Field(default=Words(), description="symptom words it covers")
    url: str | None = None
    _lowered: frozenset[str] = PrivateAttr(default=frozenset())

    def model_post_init(self, context: Any, /) -> None:
        """Lower-case its codes once, at load (they are compared with every evaluated ticket's)."""
        self._lowered = frozenset(c.lower() for c in self.codes)

    def covers(self, codes: frozenset[str] | set[str], words: Tokens) -> bool:
        """Whether it covers a ticket with these (lower-cased) error codes and words."""
        return not self._lowered.isdisjoint(codes) or (bool(self.words) and self.words.search(words) is not None)


class KnowledgeSettings(RuleSettings):
    """Settings of the knowledge-base step."""

    articles: list[KbArticle] = Field(default_factory=list)
    max_suggestions: int = Field(default=3, ge=1, le=10, description="prior fixes listed at most")
    repeat_threshold: int = Field(default=3, ge=2, description="the repeat that asks for a KB article")
    repeat_window: Duration = Field(
        default=timedelta(days=90), description="repeats are counted over this span (by the store query)"
    )
    search_window: Duration = Field(
        default=timedelta(days=365), description="prior fixes are looked for over this span (by the store query)"
    )
    open_only: bool = Field(default=True, description="suggest fixes only while the ticket is open")
    other_clients_in_client_systems: Literal["kb_only", "hide"] = Field(
        default="kb_only",
        description="what a note in a client's own system shows of other clients' fixes: their KB ids, or nothing",
    )


class KnowledgeRule(Rule[KnowledgeSettings]):
    """Suggest prior fixes and matching KB articles; ask for an article on the third repeat."""

    id: ClassVar[str] = "knowledge"
    step: ClassVar[str] = STEP
    settings_model = KnowledgeSettings
    codes: ClassVar[dict[str, Code]] = {
        "prior_fixes": Code("info", "resolved tickets with the same error signature, with their fixes"),
        "article_match": Code("info", "a configured KB article covers the ticket's error or symptom"),
        "write_article": Code(
            "warning", "the same error keeps coming back and no KB article covers it", step=UPDATE_STEP
        ),
    }

    def evaluate(self, data: RuleInput[KnowledgeSettings]) -> RuleOutcome:
        """Match the ticket against prior fixes and configured articles."""
        settings, ticket, knowledge = data.settings, data.ticket, data.knowledge
        is_open = ticket.status is None or ticket.status.is_open
        if settings.articles:
            codes = {c.lower() for c in data.text.codes}
            articles = [a for a in settings.articles if a.covers(codes, data.text.words)]
        else:
            articles = []
        findings: list[Finding] = []
        trace = (
            (
                f"signature {knowledge.signature!r}: {len(knowledge.prior_fixes)} prior fix(es), "
                f"{knowledge.repeats} repeat(s); {len(articles)} article(s) match",
            )
            if data.explain
            else ()
        )
        if is_open or not settings.open_only:
            if knowledge.prior_fixes:
                finding = self._prior(data, knowledge.prior_fixes[: settings.max_suggestions])
                if finding is not None:
                    findings.append(finding)
            if articles:
                findings.append(
                    self.finding(
                        "article_match",
                        "Configured KB article(s) cover this: "
                        + "; ".join(f"{a.id} {a.title!r}" + (f" ({a.url})" if a.url else "") for a in articles)
                        + ".",
                        advice="Follow the article's runbook step for step; if you deviate, write down why.",
                        evidence={"articles": [a.id for a in articles]},
                    )
                )
        if (
            knowledge.signature
            and knowledge.repeats >= settings.repeat_threshold
            and not articles
            and not any(fix.kb_ids for fix in knowledge.prior_fixes)
            and not data.text.kb_ids
        ):
            findings.append(
                self.finding(
                    "write_article",
                    f"This is repeat {knowledge.repeats} of the error {knowledge.signature} within "
                    f"{settings.repeat_window.days} days, and no KB article covers it.",
                    advice="Once it is resolved, write the KB article (IT Glue / Hudu / Confluence) with the symptom, "
                    "the error, the cause and the fix, and cite its id in the resolution: the next repeat should not "
                    "need fresh diagnosis.",
                    evidence={"signature": knowledge.signature, "repeats": knowledge.repeats},
                )
            )
        return RuleOutcome(findings=tuple(findings), trace=trace)

    def _prior(self, data: RuleInput[KnowledgeSettings], fixes: tuple[PriorFix, ...]) -> Finding | None:
        own = data.tenant.key
        client_system = data.connection.client_owned
        hide = data.settings.other_clients_in_client_systems == "hide"
        lines = []
        shown: list[JsonValue] = []
        others = 0
        for fix in fixes:
            other = fix.tenant != own
            others += other
            when = fix.resolved_at.date().isoformat() if fix.resolved_at else "date unknown"
            kbs = ", ".join(fix.kb_ids)
            if other and client_system:
                if hide or not kbs:
                    continue
                lines.append(f"another client's ticket ({when}) was fixed with {kbs}")
            else:
                label = f"{fix.number or fix.ticket_key}" + (f" (other client {fix.tenant})" if other else "")
                excerpt = " ".join(fix.resolution.split())
                excerpt = excerpt if len(excerpt) <= 240 else excerpt[:237] + "..."
                lines.append(f"{label}, {when}: {fix.summary!r}: {excerpt}" + (f" [{kbs}]" if kbs else ""))
            shown.append(fix.ticket_key)
        if not lines:
            return None
        message = (
            f"{len(lines)} earlier ticket(s) with the same error ({data.knowledge.signature}) were resolved:\n"
            + ("\n".join(f"- {line}" for line in lines))
        )
        if others:
            message += (
                "\nTickets of other clients are shown in this internal note only: never pass them to the requester."
            )
        return self.finding(
            "prior_fixes",
            message,
            advice="Try the documented fix first; if it does not apply, say why in the ticket.",
            evidence={"signature": data.knowledge.signature, "tickets": shown, "other_clients": others},
        )
