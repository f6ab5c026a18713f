//! The demo tenant: small, but with every kind of object and relationship the connector must handle.

use crate::ids::{app_role_assignment_id, directory_role_assignment_id};
use crate::model::{
    AppRole, AppRoleAssignment, ArmRoleAssignment, ArmRoleDefinition, DirectoryObjectStub, DirectoryRoleAssignment,
    DirectoryRoleDefinition, DirectoryRoleEligibility, Group, ResourceGroup, ServicePrincipal, StubKind, Subscription,
    Tenant, User,
};

const TENANT_ID: &str = "4ee57646-0ca4-4e26-8a6e-26aeb7cd6a31";
const DOMAIN: &str = "contosofake.onmicrosoft.com";
/// The app registration the connector signs in as; its service principal is in the tenant too.
const CLIENT_ID: &str = "54146b49-8504-498e-9fd1-9e5d5b3fa62c";
const CLIENT_SECRET: &str = "fake~Secret.Q8w3_demo-only-7Yp";
/// Microsoft's own tenant, the owner of first-party apps such as Microsoft Graph.
const MICROSOFT_TENANT_ID: &str = "f8cdef31-a31e-4b4a-93e4-5f571e91255a";
const DEFAULT_ACCESS: &str = "00000000-0000-0000-0000-000000000000";

const ADELE: &str = "82c75d0e-7ec4-4b81-9738-97df5fb71542";
const ALEX: &str = "31821e8c-a784-4fa2-a8e9-2e3ee05bf259";
const MEGAN: &str = "3ce15a26-65a0-45ce-8fc0-685f4bf71e84";
const DIEGO: &str = "5e14df0a-a1ec-48e4-8351-a77df2eb2a3f";
const LEE: &str = "1eeecf37-38ac-4417-affa-a0398e4d62d4";
const ISAIAH: &str = "fa3b6864-8fa8-4617-b48d-8489a6a00179";
const SUPPORT_MAILBOX: &str = "a969271a-ce62-42ff-a285-b29f740d80bc";
const ROOM_ADAMS: &str = "88bba088-1d64-4ac9-89a1-80ed9f63e599";
const PROJECTOR: &str = "d625493d-83dd-4ee2-a712-ae595d80988b";
const NESTOR: &str = "cb30d1ff-5a43-419d-b875-1e891652fec8";
const GUEST_PRADEEP: &str = "6b872863-0971-4ce9-bfe1-a2dbc7ba558d";
const GUEST_KALYAN: &str = "72e9284a-aa7c-4140-8459-ccdf3d69036e";

const FINANCE: &str = "fcc2bbe5-1178-4614-a729-1941bf709a9e";
const FINANCE_AUDITORS: &str = "27fa3f01-da70-41c2-a644-0163b21edd64";
const MARKETING: &str = "6832cc1f-d5cf-421e-8532-ceb0006658d2";
const ONPREM_SALES: &str = "62ae8559-cbe1-4cbb-8d83-c6a3b2dbc142";
const TIER0_ADMINS: &str = "fdbf358e-76c6-417a-97ef-966c1b4dda3d";
const DEVICES_AND_AUTOMATION: &str = "7a0ecbb8-ea79-4938-9339-f9a2c60863b5";
const EMPTY_PROJECT: &str = "c7f10f76-8a57-489e-a50d-5dd617e0e9c2";

const DEVICE: &str = "15c48bf0-746e-456a-9ec7-e14fc6665102";
const CONTACT: &str = "2c089ba4-276b-4dc3-8b37-ac468d60dfd3";

const EXPENSES_SP: &str = "f12727d0-aec4-4bb5-a69d-efba85a4104b";
const EXPENSES_APPROVER_ROLE: &str = "47cbbeae-6e03-4329-8aa0-14d9084562a1";
const EXPENSES_SUBMITTER_ROLE: &str = "cc904b2e-59c6-4b43-be85-8fad6dee0a7f";
const EXPENSES_SYNC_ROLE: &str = "b5e5975d-af9f-4496-9def-64c86539e19a";
const GRAPH_SP: &str = "55d6f89c-1674-474e-ab2e-33249deb0a0b";
const GRAPH_USER_READ_ALL_ROLE: &str = "df021288-bdef-4463-88db-98f22de89214";
const CONNECTOR_SP: &str = "f92d5952-105d-480f-b6af-c1620e3d12fa";
const VM_IDENTITY_SP: &str = "909cdf14-446c-4eca-8ccb-200d2d19cabe";
const DEPLOY_IDENTITY_SP: &str = "1c1e9fde-7797-492d-809b-8e927a6df1eb";
const LEGACY_SP: &str = "1cd72cff-7345-4c8a-adec-0adf53777762";

const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";
const USER_ADMINISTRATOR: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";
const APPLICATION_ADMINISTRATOR: &str = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3";
const CUSTOM_APP_READER: &str = "8ef57760-c8c4-4f04-8afa-bc681c76d33b";

const PRODUCTION: &str = "97e047b1-49b9-49a1-84df-6105ff6cd0d0";
const DEVELOPMENT: &str = "9fce8fff-9668-4ff6-a494-155d386bd462";
const OWNER: &str = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";
const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";
const READER: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
const USER_ACCESS_ADMINISTRATOR: &str = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9";
const KEY_VAULT_SECRETS_USER: &str = "4633458b-17de-408a-b874-0445c86b69e6";
const CUSTOM_VM_OPERATOR: &str = "623b7150-7c3d-43f0-ad10-41eaa085d016";

impl Tenant {
    /// The demo tenant: 12 users (guests, a disabled user, an on-premises synced user, shared/room/
    /// equipment mailboxes and users without a mailbox), 7 groups (security, Microsoft 365, on-premises,
    /// role-assignable, nested, mixed members, empty), 6 service principals (3 applications, 2 managed
    /// identities, 1 legacy), directory roles with PIM eligibility, and 2 subscriptions whose RBAC
    /// assignments sit at every scope level including a management group and the root.
    pub fn sample() -> Tenant {
        Tenant {
            tenant_id: TENANT_ID.into(),
            display_name: "Contoso (fake)".into(),
            default_domain: DOMAIN.into(),
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            users: users(),
            groups: groups(),
            service_principals: service_principals(),
            other_objects: vec![
                DirectoryObjectStub {
                    id: DEVICE.into(),
                    display_name: "DESKTOP-7F3K2Q".into(),
                    kind: StubKind::Device,
                },
                DirectoryObjectStub {
                    id: CONTACT.into(),
                    display_name: "Jordan Partner (Fabrikam contact)".into(),
                    kind: StubKind::OrgContact,
                },
            ],
            role_definitions: role_definitions(),
            role_assignments: vec![
                role_assignment(GLOBAL_ADMINISTRATOR, NESTOR),
                role_assignment(USER_ADMINISTRATOR, TIER0_ADMINS),
                role_assignment(APPLICATION_ADMINISTRATOR, CONNECTOR_SP),
                role_assignment(CUSTOM_APP_READER, ADELE),
            ],
            role_eligibilities: Some(vec![
                DirectoryRoleEligibility {
                    id: "c4ec3219-fe9c-451e-a12f-b42e09d16c25".into(),
                    principal_id: ALEX.into(),
                    role_definition_id: USER_ADMINISTRATOR.into(),
                    directory_scope_id: "/".into(),
                },
                DirectoryRoleEligibility {
                    id: "b96670d2-7734-46b1-b883-f630438e3917".into(),
                    principal_id: MEGAN.into(),
                    role_definition_id: GLOBAL_ADMINISTRATOR.into(),
                    directory_scope_id: "/".into(),
                },
            ]),
            subscriptions: vec![
                subscription(PRODUCTION, "Contoso Production"),
                subscription(DEVELOPMENT, "Contoso Development"),
            ],
            resource_groups: vec![
                resource_group(PRODUCTION, "rg-shared", "eastus"),
                resource_group(PRODUCTION, "rg-build", "westeurope"),
                resource_group(DEVELOPMENT, "rg-shared", "westus2"),
            ],
            arm_role_definitions: arm_role_definitions(),
            arm_role_assignments: arm_role_assignments(),
        }
    }
}

struct Person<'a> {
    id: &'a str,
    name: &'a str,
    alias: &'a str,
    job_title: Option<&'a str>,
    department: Option<&'a str>,
    mailbox: Option<&'a str>,
}

fn member(person: Person) -> User {
    let upn = format!("{}@{DOMAIN}", person.alias);
    User {
        id: person.id.into(),
        display_name: person.name.into(),
        mail: person.mailbox.map(|_| upn.clone()),
        user_principal_name: upn,
        user_type: "Member".into(),
        account_enabled: true,
        job_title: person.job_title.map(Into::into),
        department: person.department.map(Into::into),
        employee_id: None,
        on_premises_sync_enabled: None,
        mailbox_purpose: person.mailbox.map(Into::into),
    }
}

/// B2B guests: UPN `<mail with _ for @>#EXT#@<our domain>`, no mailbox here.
fn guest(id: &str, name: &str, home_mail: &str) -> User {
    User {
        id: id.into(),
        display_name: name.into(),
        user_principal_name: format!("{}#EXT#@{DOMAIN}", home_mail.replace('@', "_")),
        mail: Some(home_mail.into()),
        user_type: "Guest".into(),
        account_enabled: true,
        job_title: None,
        department: None,
        employee_id: None,
        on_premises_sync_enabled: None,
        mailbox_purpose: None,
    }
}

fn users() -> Vec<User> {
    let person =
        |id, name, alias, job_title, department, mailbox| Person { id, name, alias, job_title, department, mailbox };
    let mut users = vec![
        member(person(ADELE, "Adele Vance", "AdeleV", Some("Finance Manager"), Some("Finance"), Some("user"))),
        member(person(ALEX, "Alex Wilber", "AlexW", Some("Accountant"), Some("Finance"), Some("user"))),
        member(person(MEGAN, "Megan Bowen", "MeganB", Some("Marketing Manager"), Some("Marketing"), Some("user"))),
        member(person(DIEGO, "Diego Siciliani", "DiegoS", Some("Sales Lead"), Some("Sales"), Some("user"))),
        member(person(LEE, "Lee Gu", "LeeG", Some("Sales Associate"), Some("Sales"), Some("user"))),
        member(person(ISAIAH, "Isaiah Langer", "IsaiahL", Some("Engineer"), Some("IT"), None)),
        member(person(SUPPORT_MAILBOX, "Contoso Support", "support", None, None, Some("shared"))),
        member(person(ROOM_ADAMS, "Conf Room Adams", "Adams", None, None, Some("room"))),
        member(person(PROJECTOR, "Projector 01", "projector01", None, None, Some("equipment"))),
        member(person(NESTOR, "Nestor Wilke", "NestorW", Some("Director of IT"), Some("IT"), Some("user"))),
        guest(GUEST_PRADEEP, "Pradeep Gupta", "pradeep@fabrikam.com"),
        guest(GUEST_KALYAN, "Kalyan Krishna", "kalyan@adatum.com"),
    ];
    for user in &mut users {
        user.employee_id = match user.id.as_str() {
            ADELE => Some("E1001".into()),
            ALEX => Some("E1002".into()),
            NESTOR => Some("E1000".into()),
            _ => None,
        };
        if user.id == DIEGO {
            user.on_premises_sync_enabled = Some(true);
        }
        if user.id == LEE {
            user.account_enabled = false;
        }
    }
    users
}

struct GroupSpec<'a> {
    id: &'a str,
    name: &'a str,
    description: &'a str,
    members: &'a [&'a str],
    owners: &'a [&'a str],
}

fn security_group(spec: GroupSpec) -> Group {
    Group {
        id: spec.id.into(),
        display_name: spec.name.into(),
        description: Some(spec.description.into()),
        group_types: Vec::new(),
        mail: None,
        mail_enabled: false,
        security_enabled: true,
        on_premises_sync_enabled: None,
        is_assignable_to_role: false,
        members: spec.members.iter().map(|id| (*id).into()).collect(),
        owners: spec.owners.iter().map(|id| (*id).into()).collect(),
    }
}

fn groups() -> Vec<Group> {
    let finance = security_group(GroupSpec {
        id: FINANCE,
        name: "Finance Team",
        description: "Everyone in Finance; includes the auditors group",
        members: &[ADELE, ALEX, FINANCE_AUDITORS],
        owners: &[ADELE],
    });
    let auditors = security_group(GroupSpec {
        id: FINANCE_AUDITORS,
        name: "Finance Auditors",
        description: "External and internal auditors",
        members: &[DIEGO, GUEST_PRADEEP],
        owners: &[ADELE],
    });
    let marketing = Group {
        group_types: vec!["Unified".into()],
        mail: Some(format!("marketing@{DOMAIN}")),
        mail_enabled: true,
        security_enabled: false,
        ..security_group(GroupSpec {
            id: MARKETING,
            name: "Marketing",
            description: "Microsoft 365 group of the marketing department",
            members: &[MEGAN, ALEX, GUEST_KALYAN],
            owners: &[MEGAN],
        })
    };
    let onprem_sales = Group {
        on_premises_sync_enabled: Some(true),
        ..security_group(GroupSpec {
            id: ONPREM_SALES,
            name: "Sales (on-premises AD)",
            description: "Synchronised from the on-premises Active Directory",
            members: &[DIEGO, LEE],
            owners: &[],
        })
    };
    let tier0 = Group {
        is_assignable_to_role: true,
        ..security_group(GroupSpec {
            id: TIER0_ADMINS,
            name: "Tier 0 Admins",
            description: "Role-assignable group holding User Administrator",
            members: &[NESTOR, ADELE],
            owners: &[NESTOR],
        })
    };
    let devices = security_group(GroupSpec {
        id: DEVICES_AND_AUTOMATION,
        name: "Devices and Automation",
        description: "Mixed membership: a device, a contact, a managed identity and a user",
        members: &[DEVICE, CONTACT, VM_IDENTITY_SP, ISAIAH],
        owners: &[NESTOR, CONNECTOR_SP],
    });
    let empty = security_group(GroupSpec {
        id: EMPTY_PROJECT,
        name: "Project Falcon (empty)",
        description: "A group with no members yet",
        members: &[],
        owners: &[MEGAN],
    });
    vec![finance, auditors, marketing, onprem_sales, tier0, devices, empty]
}

fn app_role(id: &str, display_name: &str, value: &str, member_type: &str) -> AppRole {
    AppRole {
        id: id.into(),
        display_name: display_name.into(),
        value: value.into(),
        description: format!("{display_name} of the application"),
        allowed_member_types: vec![member_type.into()],
        is_enabled: true,
    }
}

fn assignment(
    resource_id: &str,
    app_role_id: &str,
    principal_id: &str,
    principal_type: &str,
    principal_name: &str,
) -> AppRoleAssignment {
    AppRoleAssignment {
        id: app_role_assignment_id(principal_id, resource_id, app_role_id),
        app_role_id: app_role_id.into(),
        principal_id: principal_id.into(),
        principal_type: principal_type.into(),
        principal_display_name: principal_name.into(),
        resource_id: resource_id.into(),
    }
}

fn service_principal(id: &str, app_id: &str, name: &str, kind: &str) -> ServicePrincipal {
    ServicePrincipal {
        id: id.into(),
        app_id: app_id.into(),
        display_name: name.into(),
        service_principal_type: kind.into(),
        account_enabled: true,
        app_owner_organization_id: None,
        app_roles: Vec::new(),
        tags: Vec::new(),
        alternative_names: Vec::new(),
        owners: Vec::new(),
        app_role_assigned_to: Vec::new(),
    }
}

fn service_principals() -> Vec<ServicePrincipal> {
    let expenses = ServicePrincipal {
        app_owner_organization_id: Some(TENANT_ID.into()),
        app_roles: vec![
            app_role(EXPENSES_APPROVER_ROLE, "Expense Approver", "Expenses.Approve", "User"),
            app_role(EXPENSES_SUBMITTER_ROLE, "Expense Submitter", "Expenses.Submit", "User"),
            app_role(EXPENSES_SYNC_ROLE, "Expenses Sync", "Expenses.Sync.All", "Application"),
        ],
        tags: vec!["WindowsAzureActiveDirectoryIntegratedApp".into(), "HideApp".into()],
        owners: vec![NESTOR.into(), ADELE.into()],
        app_role_assigned_to: vec![
            assignment(EXPENSES_SP, EXPENSES_APPROVER_ROLE, ADELE, "User", "Adele Vance"),
            assignment(EXPENSES_SP, EXPENSES_SUBMITTER_ROLE, ALEX, "User", "Alex Wilber"),
            assignment(EXPENSES_SP, EXPENSES_SUBMITTER_ROLE, FINANCE, "Group", "Finance Team"),
            assignment(EXPENSES_SP, DEFAULT_ACCESS, MEGAN, "User", "Megan Bowen"),
            assignment(EXPENSES_SP, EXPENSES_SYNC_ROLE, DEPLOY_IDENTITY_SP, "ServicePrincipal", "id-deploy"),
        ],
        ..service_principal(EXPENSES_SP, "9b3bd129-9e91-435e-84cb-bb8d2f46c869", "Contoso Expenses", "Application")
    };
    let graph = ServicePrincipal {
        app_owner_organization_id: Some(MICROSOFT_TENANT_ID.into()),
        app_roles: vec![app_role(
            GRAPH_USER_READ_ALL_ROLE,
            "Read all users' full profiles",
            "User.Read.All",
            "Application",
        )],
        app_role_assigned_to: vec![assignment(
            GRAPH_SP,
            GRAPH_USER_READ_ALL_ROLE,
            CONNECTOR_SP,
            "ServicePrincipal",
            "Fake Governance Connector",
        )],
        ..service_principal(GRAPH_SP, "00000003-0000-0000-c000-000000000000", "Microsoft Graph", "Application")
    };
    let connector = ServicePrincipal {
        app_owner_organization_id: Some(TENANT_ID.into()),
        owners: vec![NESTOR.into()],
        ..service_principal(CONNECTOR_SP, CLIENT_ID, "Fake Governance Connector", "Application")
    };
    let vm_identity = ServicePrincipal {
        alternative_names: vec![
            "isExplicit=False".into(),
            format!(
                "/subscriptions/{PRODUCTION}/resourceGroups/rg-build/providers/Microsoft.Compute/virtualMachines/vm-build-01"
            ),
        ],
        ..service_principal(VM_IDENTITY_SP, "c156cb2c-ca5e-404b-8e63-39e0a61aa4e5", "vm-build-01", "ManagedIdentity")
    };
    let deploy_identity = ServicePrincipal {
        alternative_names: vec![
            "isExplicit=True".into(),
            format!(
                "/subscriptions/{PRODUCTION}/resourcegroups/rg-shared/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-deploy"
            ),
        ],
        ..service_principal(DEPLOY_IDENTITY_SP, "1ad5e854-39d5-4a45-af48-c4f9e2545bab", "id-deploy", "ManagedIdentity")
    };
    let legacy =
        service_principal(LEGACY_SP, "2cd9df96-cb01-4934-a980-a94840898336", "Legacy Office Connector", "Legacy");
    vec![expenses, graph, connector, vm_identity, deploy_identity, legacy]
}

fn role_definitions() -> Vec<DirectoryRoleDefinition> {
    let built_in = |id: &str, name: &str, description: &str| DirectoryRoleDefinition {
        id: id.into(),
        template_id: id.into(),
        display_name: name.into(),
        description: description.into(),
        is_built_in: true,
        is_enabled: true,
    };
    vec![
        built_in(
            GLOBAL_ADMINISTRATOR,
            "Global Administrator",
            "Can manage all aspects of Microsoft Entra ID and Microsoft services that use Microsoft Entra identities.",
        ),
        built_in(
            USER_ADMINISTRATOR,
            "User Administrator",
            "Can manage all aspects of users and groups, including resetting passwords for limited admins.",
        ),
        built_in(
            APPLICATION_ADMINISTRATOR,
            "Application Administrator",
            "Can create and manage all aspects of app registrations and enterprise apps.",
        ),
        DirectoryRoleDefinition {
            is_built_in: false,
            ..built_in(CUSTOM_APP_READER, "Contoso Application Reader", "Custom role: reads enterprise applications.")
        },
    ]
}

fn role_assignment(role_definition_id: &str, principal_id: &str) -> DirectoryRoleAssignment {
    DirectoryRoleAssignment {
        id: directory_role_assignment_id(role_definition_id, principal_id, "/"),
        principal_id: principal_id.into(),
        role_definition_id: role_definition_id.into(),
        directory_scope_id: "/".into(),
    }
}

fn subscription(id: &str, name: &str) -> Subscription {
    Subscription {
        subscription_id: id.into(),
        display_name: name.into(),
        tenant_id: TENANT_ID.into(),
        state: "Enabled".into(),
    }
}

fn resource_group(subscription_id: &str, name: &str, location: &str) -> ResourceGroup {
    ResourceGroup { subscription_id: subscription_id.into(), name: name.into(), location: location.into() }
}

fn arm_role_definitions() -> Vec<ArmRoleDefinition> {
    let built_in = |id: &str, name: &str, description: &str| ArmRoleDefinition {
        id: id.into(),
        role_name: name.into(),
        description: description.into(),
        role_type: "BuiltInRole".into(),
        assignable_scopes: vec!["/".into()],
    };
    vec![
        built_in(
            OWNER,
            "Owner",
            "Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.",
        ),
        built_in(
            CONTRIBUTOR,
            "Contributor",
            "Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC.",
        ),
        built_in(READER, "Reader", "View all resources, but does not allow you to make any changes."),
        built_in(
            USER_ACCESS_ADMINISTRATOR,
            "User Access Administrator",
            "Lets you manage user access to Azure resources.",
        ),
        built_in(KEY_VAULT_SECRETS_USER, "Key Vault Secrets User", "Read secret contents."),
        ArmRoleDefinition {
            id: CUSTOM_VM_OPERATOR.into(),
            role_name: "Contoso VM Operator".into(),
            description: "Custom role: start and stop virtual machines in production.".into(),
            role_type: "CustomRole".into(),
            assignable_scopes: vec![format!("/subscriptions/{PRODUCTION}")],
        },
    ]
}

fn arm_role_assignments() -> Vec<ArmRoleAssignment> {
    let assign = |name: &str, scope: String, role: &str, principal: &str, principal_type: &str| ArmRoleAssignment {
        name: name.into(),
        scope,
        role_definition_id: role.into(),
        principal_id: principal.into(),
        principal_type: principal_type.into(),
    };
    let production = format!("/subscriptions/{PRODUCTION}");
    let development = format!("/subscriptions/{DEVELOPMENT}");
    vec![
        assign("2533ebbc-474f-418e-9a59-d4194ffbbb51", production.clone(), OWNER, NESTOR, "User"),
        assign("c834f3d4-cdac-436e-b406-b3e0cb1b99a0", production.clone(), READER, FINANCE, "Group"),
        assign(
            "e60e48da-fe4a-493f-8ac6-751d01968cc8",
            format!("{production}/resourceGroups/rg-shared"),
            CONTRIBUTOR,
            ALEX,
            "User",
        ),
        assign(
            "b1bb374f-9e72-4d60-aa5e-36187075504f",
            format!("{production}/resourceGroups/rg-shared"),
            KEY_VAULT_SECRETS_USER,
            DEPLOY_IDENTITY_SP,
            "ServicePrincipal",
        ),
        assign(
            "0b4e56f5-9df3-4a67-b36e-fd9b4fcabe14",
            format!("{production}/resourceGroups/rg-build"),
            CUSTOM_VM_OPERATOR,
            VM_IDENTITY_SP,
            "ServicePrincipal",
        ),
        assign("c4dacf11-2e71-41df-9669-1ce06dba0e7a", development.clone(), READER, MARKETING, "Group"),
        assign("f0ab4a02-8ef0-4e8e-8b43-40861d8aa644", development.clone(), READER, GUEST_KALYAN, "User"),
        assign(
            "fc7eeda5-fcfd-4709-aeb2-63ae306670cc",
            format!("{development}/resourceGroups/rg-shared"),
            CONTRIBUTOR,
            MEGAN,
            "User",
        ),
        assign(
            "eacef68c-3d98-4da6-b3fa-3028f7e4efd0",
            "/providers/Microsoft.Management/managementGroups/contoso-root".into(),
            READER,
            TIER0_ADMINS,
            "Group",
        ),
        assign("8c839178-707a-4c0b-8f93-bc911393b5e1", "/".into(), USER_ACCESS_ADMINISTRATOR, NESTOR, "User"),
    ]
}
