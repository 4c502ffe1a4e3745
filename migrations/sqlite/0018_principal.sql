-- Sign-in by a second name (#17): AD's userPrincipalName (ann@corp.example beside ann), kept by the
-- directory sync. The throttles count against the username it stands for, so both names of one
-- account share one budget.
ALTER TABLE users ADD COLUMN principal TEXT;
CREATE INDEX users_principal ON users(principal) WHERE principal IS NOT NULL;
