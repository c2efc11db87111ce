"""The deterministic seed world of a realistic MSP: tenants, contacts, assets, technicians and queues.

Everything here is vendor-neutral; each vendor simulator turns it into its own companies, contacts, members,
boards, groups and configuration items. The same seed always builds the same world.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Asset", "Contact", "Queue", "Technician", "Tenant", "World", "build_world"]

Topic = Literal["general", "network", "messaging", "security", "infrastructure"]
QueueRole = Literal["tiered", "client_handoff", "client_board"]


@dataclass(frozen=True, slots=True)
class Tenant:
    """An MSP client. ``key`` is the tenant key of psabridge's configuration."""

    key: str
    name: str
    identifier: str  # the company identifier an MSP PSA shows, e.g. ConnectWise's company/identifier
    short: str  # prefix of device names, e.g. ACME-LT-0001
    contract_tier: str
    calendar: str
    timezone: str
    domain: str
    phone_prefix: str
    sites: tuple[str, ...]
    app: str  # the client's line-of-business application and its executable
    app_exe: str
    vip: tuple[str, ...]  # e-mail addresses of VIP users


@dataclass(frozen=True, slots=True)
class Contact:
    """A client's end user."""

    id: int
    tenant: str
    first_name: str
    last_name: str
    email: str
    phone: str
    title: str
    site: str
    vip: bool = False

    @property
    def name(self) -> str:
        """First and last name."""
        return f"{self.first_name} {self.last_name}"


@dataclass(frozen=True, slots=True)
class Asset:
    """A configuration item: a device or a service the MSP manages (RMM/CMDB)."""

    id: int
    tenant: str
    name: str
    kind: str  # laptop, desktop, server, printer, firewall, switch, access_point, vpn_gateway, cloud_service
    model: str
    serial: str
    owner: int | None  # contact id, for personal devices
    rmm_url: str


@dataclass(frozen=True, slots=True)
class Technician:
    """An MSP engineer (a ConnectWise member, Autotask resource, ServiceNow/Freshservice agent)."""

    id: int
    identifier: str
    first_name: str
    last_name: str
    email: str
    tier: int
    topics: tuple[Topic, ...]

    @property
    def name(self) -> str:
        """First and last name."""
        return f"{self.first_name} {self.last_name}"


@dataclass(frozen=True, slots=True)
class Queue:
    """A board, queue or assignment group.

    ``tiered`` queues are the MSP's Tier 1/2/3 queues; ``client_handoff`` queues sit in a client's own ITSM and
    hold what the client hands to the MSP; ``client_board`` boards sit in the MSP's PSA and hold the mirrors of
    one client's tickets (created by psabridge, never seeded).
    """

    name: str
    tier: int
    topic: Topic
    role: QueueRole = "tiered"
    tenant: str | None = None


TENANTS: tuple[Tenant, ...] = (
    # Values match config/psabridge.yaml (tenants:), so the generated configuration and the seed data agree.
    Tenant(
        key="acme",
        name="Acme Dental",
        identifier="AcmeDental",
        short="ACME",
        contract_tier="gold",
        calendar="us-east-business",
        timezone="America/New_York",
        domain="acme.example",
        phone_prefix="+1 212 555 01",
        sites=("Midtown Clinic", "Riverside Clinic", "Billing Office"),
        app="Dentrix",
        app_exe="Dentrix.exe",
        vip=("ceo@acme.example",),
    ),
    Tenant(
        key="globex",
        name="Globex Logistics",
        identifier="GlobexLogistics",
        short="GLBX",
        contract_tier="silver",
        calendar="eu-business",
        timezone="Europe/Berlin",
        domain="globex.example",
        phone_prefix="+49 30 5550 1",
        sites=("Berlin HQ", "Hamburg Warehouse", "Leipzig Hub"),
        app="SAP GUI",
        app_exe="saplogon.exe",
        vip=("cfo@globex.example",),
    ),
    Tenant(
        key="initech",
        name="Initech",
        identifier="Initech",
        short="INIT",
        contract_tier="bronze",
        calendar="us-central-business",
        timezone="America/Chicago",
        domain="initech.example",
        phone_prefix="+1 312 555 01",
        sites=("Chicago Office",),
        app="QuickBooks",
        app_exe="QBW32.exe",
        vip=(),
    ),
    Tenant(
        key="umbrella",
        name="Umbrella Health",
        identifier="UmbrellaHealth",
        short="UMB",
        contract_tier="gold",
        calendar="24x7",
        timezone="UTC",
        domain="umbrella.example",
        phone_prefix="+1 617 555 01",
        sites=("North Campus", "Lab Wing", "Urgent Care"),
        app="Epic Hyperspace",
        app_exe="Hyperspace.exe",
        vip=("cmo@umbrella.example",),
    ),
)

QUEUES: tuple[Queue, ...] = (
    Queue("Service Desk", 1, "general"),
    Queue("Networking", 2, "network"),
    Queue("Messaging/M365", 2, "messaging"),
    Queue("Infrastructure", 3, "infrastructure"),
    Queue("Security", 3, "security"),
    # The demo's mirror links (config/psabridge.yaml links:) read these names.
    Queue("MSP Support", 1, "general", role="client_handoff", tenant="acme"),
    Queue("MSP Escalations", 2, "general", role="client_handoff", tenant="globex"),
    Queue("Acme Service", 1, "general", role="client_board", tenant="acme"),
    Queue("Globex Service", 1, "general", role="client_board", tenant="globex"),
)

_TECHNICIANS: tuple[tuple[str, str, int, tuple[Topic, ...]], ...] = (
    ("Dana", "Whitfield", 1, ("general",)),
    ("Marcus", "Oyelaran", 1, ("general",)),
    ("Priya", "Raman", 1, ("general",)),
    ("Tomasz", "Kowalczyk", 1, ("general",)),
    ("Lucia", "Ferreira", 1, ("general",)),
    ("Ethan", "Brandt", 2, ("network",)),
    ("Keiko", "Watanabe", 2, ("network", "infrastructure")),
    ("Samir", "Haddad", 2, ("messaging",)),
    ("Olivia", "Grant", 2, ("messaging",)),
    ("Viktor", "Lindqvist", 3, ("infrastructure",)),
    ("Amara", "Nwosu", 3, ("security",)),
    ("Jonah", "Pierce", 3, ("security", "network")),
)

_VIP_PEOPLE: dict[str, tuple[str, str, str]] = {
    "ceo@acme.example": ("Helen", "Marsh", "Chief Executive Officer"),
    "cfo@globex.example": ("Rainer", "Vogt", "Chief Financial Officer"),
    "cmo@umbrella.example": ("Alicia", "Moreno", "Chief Medical Officer"),
}

_FIRST = (
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Daniel",
    "Lisa",
    "Matthew",
    "Nancy",
    "Anthony",
    "Sandra",
    "Mark",
    "Ashley",
    "Steven",
    "Emily",
    "Paul",
    "Donna",
    "Andrew",
    "Michelle",
    "Joshua",
    "Carol",
    "Kevin",
    "Amanda",
    "Brian",
    "Melissa",
    "George",
    "Deborah",
    "Timothy",
    "Stephanie",
    "Jasmine",
    "Noah",
    "Mateo",
    "Sofia",
    "Aisha",
    "Wei",
    "Fatima",
    "Lukas",
    "Hannah",
    "Jonas",
    "Lea",
    "Felix",
    "Mia",
    "Omar",
    "Chloe",
    "Ivan",
    "Zoe",
)
_LAST = (
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Hoffmann",
    "Okafor",
    "Patel",
    "Kim",
    "Chen",
)
_TITLES = (
    "Office Manager",
    "Receptionist",
    "Billing Specialist",
    "Hygienist",
    "Dispatcher",
    "Accountant",
    "Warehouse Lead",
    "Nurse",
    "Lab Technician",
    "Sales Representative",
    "HR Generalist",
    "Analyst",
    "Practice Manager",
    "Logistics Coordinator",
)
_CONTACTS_PER_TENANT = {"acme": 45, "globex": 70, "initech": 30, "umbrella": 90}

# (kind, name suffix, model) of every tenant's shared infrastructure; personal devices are added per contact.
_INFRA: tuple[tuple[str, str, str], ...] = (
    ("server", "DC01", "Dell PowerEdge R650 / Windows Server 2022"),
    ("server", "FS01", "Dell PowerEdge R450 / Windows Server 2019"),
    ("server", "APP01", "HPE ProLiant DL360 Gen10 / Windows Server 2022"),
    ("firewall", "FW01", "FortiGate 100F"),
    ("vpn_gateway", "VPN01", "FortiGate SSL-VPN"),
    ("switch", "SW-CORE", "Aruba 6300M"),
    ("access_point", "AP-01", "Aruba AP-515"),
    ("access_point", "AP-02", "Aruba AP-515"),
    ("printer", "PRN-FRONTDESK", "HP LaserJet M507"),
    ("printer", "PRN-BILLING", "Brother MFC-L8900CDW"),
    ("cloud_service", "M365", "Microsoft 365 Business Premium tenant"),
)


@dataclass(frozen=True)
class World:
    """Reference data of the seed world. Build it with :func:`build_world`."""

    seed: int
    tenants: tuple[Tenant, ...]
    contacts: tuple[Contact, ...]
    assets: tuple[Asset, ...]
    technicians: tuple[Technician, ...]
    queues: tuple[Queue, ...]
    _contacts_by_tenant: dict[str, tuple[Contact, ...]] = field(default_factory=dict, repr=False)
    _assets_by_tenant: dict[str, tuple[Asset, ...]] = field(default_factory=dict, repr=False)

    def tenant(self, key: str) -> Tenant:
        """The tenant with this key (KeyError names the known keys)."""
        for tenant in self.tenants:
            if tenant.key == key:
                return tenant
        raise KeyError(f"no tenant {key!r}; known: {', '.join(t.key for t in self.tenants)}")

    def queue(self, name: str) -> Queue:
        """The queue with this name."""
        for queue in self.queues:
            if queue.name == name:
                return queue
        raise KeyError(f"no queue {name!r}; known: {', '.join(q.name for q in self.queues)}")

    def contacts_of(self, tenant: str) -> tuple[Contact, ...]:
        """The tenant's contacts, in id order."""
        return self._contacts_by_tenant.get(tenant, ())

    def assets_of(self, tenant: str) -> tuple[Asset, ...]:
        """The tenant's assets, in id order."""
        return self._assets_by_tenant.get(tenant, ())


def build_world(seed: int = 0) -> World:
    """Build the seed world: the same seed always gives the same world."""
    rng = random.Random(f"psabridge-world:{seed}")
    contacts: list[Contact] = []
    assets: list[Asset] = []
    next_contact = 1
    next_asset = 1
    for tenant in TENANTS:
        prefix = tenant.short
        used: set[str] = set()
        people: list[tuple[str, str, str, bool, str | None]] = []
        for vip_email in tenant.vip:
            first, last, title = _VIP_PEOPLE[vip_email]
            people.append((first, last, title, True, vip_email))
            used.add(f"{first}.{last}".lower())
        while len(people) < _CONTACTS_PER_TENANT[tenant.key]:
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            handle = f"{first}.{last}".lower()
            if handle in used:
                continue
            used.add(handle)
            people.append((first, last, rng.choice(_TITLES), False, None))
        tenant_contacts: list[Contact] = []
        for index, (first, last, title, vip, email) in enumerate(people):
            contact = Contact(
                id=next_contact,
                tenant=tenant.key,
                first_name=first,
                last_name=last,
                email=email or f"{first}.{last}@{tenant.domain}".lower(),
                phone=f"{tenant.phone_prefix}{index:02d}",
                title=title,
                site=rng.choice(tenant.sites),
                vip=vip,
            )
            next_contact += 1
            tenant_contacts.append(contact)
        contacts.extend(tenant_contacts)
        for kind, part, model in _INFRA:
            name = f"{prefix}-{part}"
            assets.append(_asset(next_asset, tenant, name, kind, model, None, rng))
            next_asset += 1
        for index, contact in enumerate(tenant_contacts):
            laptop = rng.random() < 0.7
            kind = "laptop" if laptop else "desktop"
            model = rng.choice(
                ("Dell Latitude 5440", "Lenovo ThinkPad T14 Gen 4", "HP EliteBook 840 G10")
                if laptop
                else ("Dell OptiPlex 7010", "HP EliteDesk 800 G9", "Lenovo ThinkCentre M70q")
            )
            name = f"{prefix}-{'LT' if laptop else 'WS'}-{index + 1:04d}"
            assets.append(_asset(next_asset, tenant, name, kind, model, contact.id, rng))
            next_asset += 1
    technicians = tuple(
        Technician(
            id=index + 1,
            identifier=f"{first[0]}{last}".lower(),
            first_name=first,
            last_name=last,
            email=f"{first}.{last}@msp.example".lower(),
            tier=tier,
            topics=topics,
        )
        for index, (first, last, tier, topics) in enumerate(_TECHNICIANS)
    )
    by_tenant_c = {t.key: tuple(c for c in contacts if c.tenant == t.key) for t in TENANTS}
    by_tenant_a = {t.key: tuple(a for a in assets if a.tenant == t.key) for t in TENANTS}
    return World(
        seed=seed,
        tenants=TENANTS,
        contacts=tuple(contacts),
        assets=tuple(assets),
        technicians=technicians,
        queues=QUEUES,
        _contacts_by_tenant=by_tenant_c,
        _assets_by_tenant=by_tenant_a,
    )


def _asset(
    asset_id: int, tenant: Tenant, name: str, kind: str, model: str, owner: int | None, rng: random.Random
) -> Asset:
    serial = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(10))
    return Asset(
        id=asset_id,
        tenant=tenant.key,
        name=name,
        kind=kind,
        model=model,
        serial=serial,
        owner=owner,
        rmm_url=f"https://rmm.msp.example/{tenant.key}/devices/{name}",
    )
