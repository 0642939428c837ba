-- RedefineTables
PRAGMA defer_foreign_keys=ON;
PRAGMA foreign_keys=OFF;
CREATE TABLE "new_authority" (
    "did" TEXT NOT NULL PRIMARY KEY,
    "status" TEXT NOT NULL,
    "origin" TEXT NOT NULL DEFAULT 'registered',
    "handle" TEXT,
    "owner_rotation_key" TEXT,
    "pds_service" BOOLEAN NOT NULL DEFAULT false,
    "created_at" DATETIME NOT NULL,
    "updated_at" DATETIME NOT NULL
);
INSERT INTO "new_authority" ("created_at", "did", "handle", "origin", "owner_rotation_key", "status", "updated_at") SELECT "created_at", "did", "handle", "origin", "owner_rotation_key", "status", "updated_at" FROM "authority";
DROP TABLE "authority";
ALTER TABLE "new_authority" RENAME TO "authority";
CREATE TABLE "new_space" (
    "uri" TEXT NOT NULL PRIMARY KEY,
    "authority_did" TEXT NOT NULL,
    "space_type" TEXT NOT NULL,
    "skey" TEXT NOT NULL,
    "read_policy" TEXT NOT NULL,
    "read_managing_app" TEXT,
    "write_policy" TEXT NOT NULL,
    "write_managing_app" TEXT,
    "app_access" TEXT NOT NULL,
    "credential_ttl_sec" INTEGER NOT NULL,
    "dpop_credential_ttl_sec" INTEGER NOT NULL DEFAULT 300,
    "roster_visibility" TEXT NOT NULL DEFAULT 'owner',
    "created_at" DATETIME NOT NULL,
    "updated_at" DATETIME NOT NULL,
    "deleted_at" DATETIME
);
INSERT INTO "new_space" ("app_access", "authority_did", "created_at", "credential_ttl_sec", "deleted_at", "read_managing_app", "read_policy", "roster_visibility", "skey", "space_type", "updated_at", "uri", "write_managing_app", "write_policy") SELECT "app_access", "authority_did", "created_at", "credential_ttl_sec", "deleted_at", "read_managing_app", "read_policy", "roster_visibility", "skey", "space_type", "updated_at", "uri", "write_managing_app", "write_policy" FROM "space";
DROP TABLE "space";
ALTER TABLE "new_space" RENAME TO "space";
CREATE INDEX "space_authority_did_idx" ON "space"("authority_did");
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;

