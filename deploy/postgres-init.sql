-- One database per service (each service owns its own tables).
CREATE DATABASE tenure_subscription OWNER tenure;
CREATE DATABASE tenure_billing OWNER tenure;
CREATE DATABASE tenure_entitlement OWNER tenure;
CREATE DATABASE tenure_notification OWNER tenure;
