//! Diesel table definitions, kept by hand in step with `migrations/` (the migration is the truth).
#![allow(missing_docs)]

diesel::table! {
    users (id) {
        id -> Int8,
        username -> Text,
        email -> Nullable<Text>,
        password_hash -> Nullable<Text>,
        role -> Text,
        created_at -> Timestamptz,
        username_key -> Text,
        username_skeleton -> Nullable<Text>,
        username_skeleton_upper -> Nullable<Text>,
        sandbox -> Bool,
        tokens_not_before -> Int8,
        disabled_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> Int8,
        user_id -> Int8,
        token_hash -> Bytea,
        expires_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        rotated_at -> Nullable<Timestamptz>,
        reuse_detected_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    friendships (user_id, friend_id) {
        user_id -> Int8,
        friend_id -> Int8,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    chats (id) {
        id -> Int8,
        kind -> Text,
        name -> Nullable<Text>,
        title -> Text,
        is_private -> Bool,
        owner_id -> Nullable<Int8>,
        direct_user_lo -> Nullable<Int8>,
        direct_user_hi -> Nullable<Int8>,
        support_user_id -> Nullable<Int8>,
        last_seq -> Int8,
        last_message_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        sandbox -> Bool,
    }
}

diesel::table! {
    chat_members (chat_id, user_id) {
        chat_id -> Int8,
        user_id -> Int8,
        role -> Text,
        last_read_seq -> Int8,
        joined_at -> Timestamptz,
    }
}

diesel::table! {
    messages (id) {
        id -> Int8,
        chat_id -> Int8,
        seq -> Int8,
        author_id -> Nullable<Int8>,
        kind -> Text,
        text -> Text,
        client_id -> Nullable<Text>,
        created_at -> Timestamptz,
        edited_at -> Nullable<Timestamptz>,
        deleted_at -> Nullable<Timestamptz>,
    }
}

diesel::joinable!(refresh_tokens -> users (user_id));
diesel::joinable!(chat_members -> chats (chat_id));
diesel::joinable!(chat_members -> users (user_id));
diesel::joinable!(messages -> chats (chat_id));
diesel::joinable!(messages -> users (author_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    refresh_tokens,
    friendships,
    chats,
    chat_members,
    messages,
);
