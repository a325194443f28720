//! Rendezvous assignment: each user goes to the live member with the
//! highest hash of member and user, so when a member joins or leaves only
//! the users assigned to it move.

use ordermon_domain::ids::UserId;

/// FNV-1a over the parts, then MurmurHash3's 64-bit finalizer (FNV alone
/// barely moves its high bits for a change in the last bytes, which would
/// hand out users in runs): a hash every build and platform agrees on.
fn fnv(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The member a user is assigned to: the highest hash of member and user.
#[must_use]
pub fn assigned<'m>(user: &UserId, members: &'m [String]) -> Option<&'m str> {
    members
        .iter()
        .max_by_key(|m| (fnv(&[m, user.as_str()]), m.as_str()))
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn uid(s: &str) -> UserId {
        UserId::new(s).unwrap()
    }

    #[test]
    fn assignment_is_stable_and_moves_only_the_users_of_a_member_that_left() {
        let three: Vec<String> = ["a", "b", "c"].iter().map(|s| (*s).to_owned()).collect();
        let two: Vec<String> = ["a", "b"].iter().map(|s| (*s).to_owned()).collect();
        let users: Vec<UserId> = (0..3000).map(|i| uid(&format!("u{i}"))).collect();
        let mut per = std::collections::HashMap::new();
        for u in &users {
            let m = assigned(u, &three).unwrap();
            *per.entry(m).or_insert(0) += 1;
            // Stable: the same answer each time, whatever the members' order.
            let mut shuffled = three.clone();
            shuffled.reverse();
            assert_eq!(assigned(u, &shuffled), Some(m));
            // c leaves: only c's users move.
            let after = assigned(u, &two).unwrap();
            if m != "c" {
                assert_eq!(after, m, "{u} moved without reason");
            }
        }
        // Spread evenly enough (each within 15 % of a third), and not in runs
        // of neighbouring ids.
        for (m, n) in per {
            assert!((850..=1150).contains(&n), "{m}: {n}");
        }
        let longest_run = users
            .windows(2)
            .fold((1, 1), |(run, best), w| {
                let run = if assigned(&w[0], &three) == assigned(&w[1], &three) {
                    run + 1
                } else {
                    1
                };
                (run, best.max(run))
            })
            .1;
        assert!(
            longest_run < 15,
            "runs of {longest_run} neighbours on one member"
        );
        assert_eq!(assigned(&uid("x"), &[]), None);
    }
}
