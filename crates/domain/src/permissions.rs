//! Who may do what in a room: one function per question, decided from the
//! caller's role (or none) and the room's visibility. Services ask these;
//! handlers never decide.

use crate::error::{DomainError, Missing};
use crate::room::{Role, Visibility};

/// Something a user may try to do in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read the room's details.
    View,
    /// Become a member by oneself.
    Join,
    /// Read the message history.
    ReadHistory,
    /// List the members.
    ListMembers,
    /// Post a message (and edit or delete one's own).
    Post,
    /// Leave the room.
    Leave,
    /// Change the name, topic or visibility.
    UpdateRoom,
    /// Delete the room and its messages.
    DeleteRoom,
    /// Add another user.
    AddMember,
    /// Change members' roles, including handing over ownership.
    ChangeRole,
    /// Delete messages written by others.
    DeleteOthersMessages,
}

impl Action {
    /// Every action, for exhaustive tests and documentation.
    pub const ALL: [Self; 11] = [
        Self::View,
        Self::Join,
        Self::ReadHistory,
        Self::ListMembers,
        Self::Post,
        Self::Leave,
        Self::UpdateRoom,
        Self::DeleteRoom,
        Self::AddMember,
        Self::ChangeRole,
        Self::DeleteOthersMessages,
    ];
}

/// Whether a user with `role` (`None`: not a member) may do `action` in a
/// room of `visibility`. Direct rooms are never managed: they have no admin
/// or owner powers beyond deleting others' messages, which no member has.
pub fn can(role: Option<Role>, visibility: Visibility, action: Action) -> bool {
    use Action::*;
    let managed = visibility != Visibility::Direct;
    match (role, action) {
        (None, View | Join) => visibility == Visibility::Public,
        (None, _) => false,
        (Some(_), View | Join | ReadHistory | ListMembers | Post | Leave) => true,
        (Some(role), UpdateRoom | AddMember) => managed && role >= Role::Admin,
        (Some(role), DeleteOthersMessages) => role >= Role::Admin,
        (Some(role), DeleteRoom | ChangeRole) => managed && role == Role::Owner,
    }
}

/// Whether `actor` may remove a member holding `target` from the room:
/// only someone above them (owner over admins and members, admin over members).
pub fn can_kick(actor: Role, target: Role) -> bool {
    actor >= Role::Admin && actor > target
}

/// The error for a refused action: a non-member of a room they cannot see
/// learns nothing (404, as if it did not exist); anyone else gets 403.
pub fn refusal(role: Option<Role>, visibility: Visibility) -> DomainError {
    if role.is_none() && !can(None, visibility, Action::View) {
        DomainError::NotFound(Missing::Room)
    } else {
        DomainError::Forbidden
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::*;

    const ROLES: [Option<Role>; 4] = [
        None,
        Some(Role::Member),
        Some(Role::Admin),
        Some(Role::Owner),
    ];

    /// The whole table for public and private rooms: row = action,
    /// columns = outsider, member, admin, owner.
    #[test]
    fn the_role_by_action_table_for_managed_rooms() {
        let table: [(Action, [bool; 4], [bool; 4]); 11] = [
            //                   public: out   mem    adm   own      private: out   mem   adm   own
            (View, [true, true, true, true], [false, true, true, true]),
            (Join, [true, true, true, true], [false, true, true, true]),
            (
                ReadHistory,
                [false, true, true, true],
                [false, true, true, true],
            ),
            (
                ListMembers,
                [false, true, true, true],
                [false, true, true, true],
            ),
            (Post, [false, true, true, true], [false, true, true, true]),
            (Leave, [false, true, true, true], [false, true, true, true]),
            (
                UpdateRoom,
                [false, false, true, true],
                [false, false, true, true],
            ),
            (
                DeleteRoom,
                [false, false, false, true],
                [false, false, false, true],
            ),
            (
                AddMember,
                [false, false, true, true],
                [false, false, true, true],
            ),
            (
                ChangeRole,
                [false, false, false, true],
                [false, false, false, true],
            ),
            (
                DeleteOthersMessages,
                [false, false, true, true],
                [false, false, true, true],
            ),
        ];
        assert_eq!(table.len(), Action::ALL.len());
        for (action, public, private) in table {
            for (index, role) in ROLES.iter().enumerate() {
                assert_eq!(
                    can(*role, Visibility::Public, action),
                    public[index],
                    "public {action:?} {role:?}"
                );
                assert_eq!(
                    can(*role, Visibility::Private, action),
                    private[index],
                    "private {action:?} {role:?}"
                );
            }
        }
    }

    #[test]
    fn direct_rooms_have_no_management() {
        for action in Action::ALL {
            let member = can(Some(Role::Member), Visibility::Direct, action);
            let expected = matches!(
                action,
                View | Join | ReadHistory | ListMembers | Post | Leave
            );
            assert_eq!(member, expected, "{action:?}");
            assert!(
                !can(None, Visibility::Direct, action),
                "outsider {action:?}"
            );
            for role in [Role::Admin, Role::Owner] {
                let managing = matches!(action, UpdateRoom | DeleteRoom | AddMember | ChangeRole);
                assert_eq!(
                    can(Some(role), Visibility::Direct, action),
                    !managing,
                    "{role:?} {action:?}"
                );
            }
        }
    }

    #[test]
    fn only_a_higher_role_kicks() {
        let roles = [Role::Member, Role::Admin, Role::Owner];
        for actor in roles {
            for target in roles {
                let expected = matches!(
                    (actor, target),
                    (Role::Owner, Role::Admin | Role::Member) | (Role::Admin, Role::Member)
                );
                assert_eq!(
                    can_kick(actor, target),
                    expected,
                    "{actor:?} kicks {target:?}"
                );
            }
        }
    }

    #[test]
    fn outsiders_of_hidden_rooms_learn_nothing() {
        for visibility in [Visibility::Private, Visibility::Direct] {
            assert!(matches!(
                refusal(None, visibility),
                DomainError::NotFound(Missing::Room)
            ));
        }
        assert!(matches!(
            refusal(None, Visibility::Public),
            DomainError::Forbidden
        ));
        assert!(matches!(
            refusal(Some(Role::Member), Visibility::Private),
            DomainError::Forbidden
        ));
    }
}
