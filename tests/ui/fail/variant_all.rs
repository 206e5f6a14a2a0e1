use storage_availability::{Outcome, StorageAvailability};

#[derive(serde::Serialize, StorageAvailability)]
struct Config {
    // `a_l_l` gives the variant `ALL`, the name of the kind enum's constant.
    #[storage(validate = check)]
    a_l_l: u8,
}

fn check(_: &u8) -> Outcome {
    Outcome::ok()
}

fn main() {}
