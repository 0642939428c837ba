-- CreateTable
CREATE TABLE "authority" (
    "did" TEXT NOT NULL PRIMARY KEY,
    "status" TEXT NOT NULL,
    "created_at" DATETIME NOT NULL,
    "updated_at" DATETIME NOT NULL
);

-- CreateTable
CREATE TABLE "authority_key" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "authority_did" TEXT NOT NULL,
    "purpose" TEXT NOT NULL,
    "curve" TEXT NOT NULL,
    "public_did_key" TEXT NOT NULL,
    "secret_enc" BLOB NOT NULL,
    "kek_id" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "created_at" DATETIME NOT NULL,
    "retired_at" DATETIME
);

-- CreateTable
CREATE TABLE "space" (
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
    "created_at" DATETIME NOT NULL,
    "updated_at" DATETIME NOT NULL,
    "deleted_at" DATETIME
);

-- CreateTable
CREATE TABLE "space_app_rule" (
    "space" TEXT NOT NULL,
    "client_id" TEXT NOT NULL,

    PRIMARY KEY ("space", "client_id")
);

-- CreateTable
CREATE TABLE "space_member" (
    "space" TEXT NOT NULL,
    "did" TEXT NOT NULL,
    "read" BOOLEAN NOT NULL,
    "write" BOOLEAN NOT NULL,
    "updated_at" DATETIME NOT NULL,

    PRIMARY KEY ("space", "did")
);

-- CreateTable
CREATE TABLE "issued_credential" (
    "space" TEXT NOT NULL,
    "jti" TEXT NOT NULL,
    "user_did" TEXT NOT NULL,
    "client_id" TEXT,
    "issued_at" DATETIME NOT NULL,
    "expires_at" DATETIME NOT NULL,
    "revoked_at" DATETIME,

    PRIMARY KEY ("space", "jti")
);

-- CreateTable
CREATE TABLE "space_writer" (
    "space" TEXT NOT NULL,
    "did" TEXT NOT NULL,
    "repo_rev" TEXT NOT NULL,
    "hash" BLOB NOT NULL,
    "space_rev" TEXT NOT NULL,
    "updated_at" DATETIME NOT NULL,

    PRIMARY KEY ("space", "did")
);

-- CreateIndex
CREATE INDEX "authority_key_authority_did_purpose_status_idx" ON "authority_key"("authority_did", "purpose", "status");

-- CreateIndex
CREATE INDEX "space_authority_did_idx" ON "space"("authority_did");

-- CreateIndex
CREATE INDEX "issued_credential_space_user_did_idx" ON "issued_credential"("space", "user_did");

-- CreateIndex
CREATE INDEX "issued_credential_space_client_id_idx" ON "issued_credential"("space", "client_id");

-- CreateIndex
CREATE INDEX "issued_credential_expires_at_idx" ON "issued_credential"("expires_at");

-- CreateIndex
CREATE INDEX "space_writer_space_space_rev_idx" ON "space_writer"("space", "space_rev");

