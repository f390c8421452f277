"""An event's team: who may do what at an event, and invitations to join it.

The owner (the organiser who made the event) may do everything. The owner invites
co-organisers by email, each in one role: an *organiser* does everything but delete the event,
manage the team and resume sending after a pause; *door* staff work the door desk and see the
attendee list, and nothing else (no CSV, no emails, no settings, no notes, no contact details).
Every organiser query for an event goes through `event_for`, so it is scoped to the owner and
the members whose role allows the action.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import sqlalchemy as sa

from domain.db import db, utcnow
from domain.errors import DomainError
from domain.limits import INVITATION_LIFETIME, INVITATIONS_PER_DAY, INVITATIONS_WINDOW
from domain.models import Event, Invitation, Organiser, OutboxMessage, TeamMember
from domain.outbox import Skip, cancel_waiting, enqueue
from domain.profile import normalise_email
from domain.tokens import hash_token


class Role(enum.StrEnum):
    """What a person is to an event."""

    OWNER = "owner"
    ORGANISER = "organiser"
    DOOR = "door"


class Action(enum.StrEnum):
    """Something an organiser page lets a person do at an event."""

    ATTENDEES = "attendees"  # the live attendee list (names, arrival, what people show all)
    DOOR = "door"  # the door desk: check people in by hand, scan badges, the live count
    PRINT_BADGES = "print_badges"  # name badges with each person's badge QR
    CSV = "csv"  # the attendee list as a download
    EMAILS = "emails"  # the emails page: each email, previews, cancel and retry
    SETTINGS = "settings"  # the event's details, follow-up and check-in settings
    POSTER = "poster"  # the poster, and replacing its code
    END = "end"  # ending the event now
    NOTES = "notes"  # the organiser's own words to attendees (a thank-you note)
    PICTURES = "pictures"  # pictures of the room: arrivals, who met whom, connection health
    DELETE = "delete"  # deleting the event
    RESUME = "resume"  # lifting a pause on all sending, when the pause holds this event's emails
    TEAM = "team"  # inviting and removing co-organisers


# Roles members can be invited into; the owner is whoever made the event.
MEMBER_ROLES = (Role.ORGANISER, Role.DOOR)
PERMISSIONS: dict[Role, frozenset[Action]] = {
    Role.OWNER: frozenset(Action),
    # Resuming sends everyone's mail on the one shared key: the owner answers for that.
    Role.ORGANISER: frozenset(Action) - {Action.DELETE, Action.TEAM, Action.RESUME},
    Role.DOOR: frozenset({Action.ATTENDEES, Action.DOOR, Action.PRINT_BADGES}),
}
ROLE_NAMES = {
    Role.OWNER: "owner",
    Role.ORGANISER: "co-organiser",
    Role.DOOR: "door staff",
}


class TeamError(DomainError):
    """A team change or an invitation was refused; `code` is stable."""


def allows(role: Role, action: Action) -> bool:
    """Tell whether a role may take an action."""
    return action in PERMISSIONS[role]


def roles_allowing(action: Action) -> list[Role]:
    """Return the roles that may take an action."""
    return [role for role in Role if allows(role, action)]


def _may(organiser: Organiser, action: Action) -> sa.ColumnElement[bool]:
    """The condition that an organiser may take an action at the event of a query's row."""
    member_roles = [role.value for role in roles_allowing(action) if role is not Role.OWNER]
    membership = (
        sa.select(TeamMember.id)
        .where(
            TeamMember.event_id == Event.id,
            TeamMember.organiser_id == organiser.id,
            TeamMember.role.in_(member_roles),
        )
        # Its own look at the team, even in a query that joins the team itself.
        .correlate_except(TeamMember)
    )
    return sa.or_(Event.organiser_id == organiser.id, membership.exists())


def event_for(organiser: Organiser, event_id: int, action: Action) -> Event | None:
    """Return an event if the organiser may take the action there, else None."""
    return db.session.scalars(
        sa.select(Event).where(Event.id == event_id, _may(organiser, action))
    ).one_or_none()


def role_on(organiser: Organiser, event: Event) -> Role | None:
    """Return the organiser's role at an event, or None if they have none."""
    if event.organiser_id == organiser.id:
        return Role.OWNER
    role = db.session.scalar(
        sa.select(TeamMember.role).where(
            TeamMember.event_id == event.id, TeamMember.organiser_id == organiser.id
        )
    )
    return Role(role) if role else None


def actions_on(organiser: Organiser, event: Event) -> frozenset[str]:
    """Return the names of the actions the organiser may take at an event (for templates)."""
    role = role_on(organiser, event)
    return frozenset(action.value for action in PERMISSIONS[role]) if role else frozenset()


def reachable_events(organiser: Organiser) -> sa.ColumnElement[bool]:
    """The condition that an event is the organiser's own or one whose team they are in."""
    return _may(organiser, Action.ATTENDEES)


# ---------------------------------------------------------------- the team


@dataclass(frozen=True)
class Member:
    """One person on an event's team, as the team page lists them."""

    id: int
    name: str
    email: str
    role: str  # in words


def members_of(event: Event) -> list[Member]:
    """Return an event's team members, in the order they joined."""
    rows = db.session.scalars(
        sa.select(TeamMember)
        .where(TeamMember.event_id == event.id)
        .order_by(TeamMember.created_at, TeamMember.id)
    )
    return [
        Member(row.id, row.organiser.name, row.organiser.email, ROLE_NAMES[Role(row.role)])
        for row in rows
    ]


def remove_member(event: Event, member_id: int) -> bool:
    """Take a member off an event's team; return whether there was one to take off."""
    removed = db.session.execute(
        sa.delete(TeamMember)
        .where(TeamMember.id == member_id, TeamMember.event_id == event.id)
        .execution_options(synchronize_session=False)
    ).rowcount
    return removed == 1


# ---------------------------------------------------------------- invitations


def invite(event: Event, email: str, role: str) -> Invitation:
    """Invite an address into an event's team in a role; the link goes out through the outbox.

    A new invitation to the same address replaces the one waiting, whose link stops working.
    """
    if role not in {r.value for r in MEMBER_ROLES}:
        raise TeamError("role", "Pick one of the roles.")
    email = normalise_email(email)
    if email == normalise_email(event.organiser.email):
        raise TeamError("owner", "That's the owner's own address: they can do everything already.")
    now = utcnow()
    # Counted per owner, across their events: each is an email to an unconfirmed address.
    sent_lately = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Invitation)
        .join(Event, Event.id == Invitation.event_id)
        .where(
            Event.organiser_id == event.organiser_id,
            Invitation.created_at > now - INVITATIONS_WINDOW,
        )
    )
    if (sent_lately or 0) >= INVITATIONS_PER_DAY:
        raise TeamError(
            "too_many",
            f"You have sent {INVITATIONS_PER_DAY} invitations today: try again tomorrow.",
        )
    for waiting in _waiting_invitations(event, email):
        _revoke(waiting)
    invitation = Invitation(
        event_id=event.id,
        email=email,
        role=role,
        created_at=now,
        expires_at=now + INVITATION_LIFETIME,
    )
    db.session.add(invitation)
    db.session.flush()
    enqueue(
        kind="invite",
        dedupe_key=f"invite:{invitation.id}",
        to_email=email,
        invitation=invitation,
        send_after=now,
    )
    return invitation


def pending_invitations(event: Event) -> list[Invitation]:
    """Return an event's invitations that can still be accepted, newest first."""
    return list(
        db.session.scalars(
            sa.select(Invitation)
            .where(Invitation.event_id == event.id, _usable())
            .order_by(Invitation.created_at.desc(), Invitation.id.desc())
        )
    )


def revoke_invitation(event: Event, invitation_id: int) -> bool:
    """Withdraw an invitation that has not been used; return whether there was one."""
    invitation = db.session.scalars(
        sa.select(Invitation).where(
            Invitation.id == invitation_id, Invitation.event_id == event.id, _usable()
        )
    ).one_or_none()
    if invitation is None:
        return False
    _revoke(invitation)
    return True


def _revoke(invitation: Invitation) -> None:
    invitation.revoked_at = utcnow()
    cancel_waiting(OutboxMessage.invitation_id == invitation.id, "revoked")
    db.session.flush()


def _usable() -> sa.ColumnElement[bool]:
    return sa.and_(
        Invitation.used_at.is_(None),
        Invitation.revoked_at.is_(None),
        Invitation.expires_at > utcnow(),
    )


def _waiting_invitations(event: Event, email: str) -> list[Invitation]:
    return list(
        db.session.scalars(
            sa.select(Invitation).where(
                Invitation.event_id == event.id, Invitation.email == email, _usable()
            )
        )
    )


def invitation_to_send(message: OutboxMessage) -> Invitation:
    """Return the invitation an invite email carries, or raise Skip if it can't be used."""
    invitation = message.invitation
    if invitation is None or invitation.revoked_at is not None:
        raise Skip("revoked")
    if invitation.used_at is not None:
        raise Skip("used")
    if invitation.expires_at <= utcnow():
        raise Skip("expired")
    return invitation


def set_invitation_token(invitation_id: int, token: str) -> None:
    """Store the hash of the token an invitation's email carries; an earlier link stops working."""
    db.session.execute(
        sa.update(Invitation)
        .where(Invitation.id == invitation_id)
        .values(token_hash=hash_token(token))
        .execution_options(synchronize_session=False)
    )


def find_invitation(token: str) -> Invitation:
    """Return the invitation a link opens if it can still be used; raise TeamError otherwise."""
    invitation = db.session.scalars(
        sa.select(Invitation).where(Invitation.token_hash == hash_token(token))
    ).one_or_none()
    if invitation is None or invitation.revoked_at is not None:
        raise TeamError("unknown", "This invitation link doesn't work: ask for a new one.")
    if invitation.used_at is not None:
        raise TeamError("used", "This invitation has already been used.")
    if invitation.expires_at <= utcnow():
        raise TeamError("expired", "This invitation has expired: ask the owner for a new one.")
    return invitation


def accept_invitation(token: str, organiser: Organiser) -> TeamMember:
    """Join an event's team with an invitation, once; the account must have its address."""
    invitation = find_invitation(token)
    if normalise_email(organiser.email) != invitation.email:
        raise TeamError(
            "other_address",
            f"This invitation is for {invitation.email}: sign in with that address to accept it.",
        )
    if invitation.event.organiser_id == organiser.id:
        raise TeamError("owner", "You own this event already.")
    # Fenced, so two taps on the same link use it once.
    used = db.session.execute(
        sa.update(Invitation)
        .where(Invitation.id == invitation.id, Invitation.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    if used != 1:
        raise TeamError("used", "This invitation has already been used.")
    member = db.session.scalars(
        sa.select(TeamMember).where(
            TeamMember.event_id == invitation.event_id, TeamMember.organiser_id == organiser.id
        )
    ).one_or_none()
    if member is None:
        member = TeamMember(
            event_id=invitation.event_id,
            organiser_id=organiser.id,
            role=invitation.role,
            created_at=utcnow(),
        )
        db.session.add(member)
    else:
        member.role = invitation.role
    db.session.flush()
    return member
