-- CreateTable
CREATE TABLE "replay_nonce" (
    "namespace" TEXT NOT NULL,
    "nonce" TEXT NOT NULL,
    "expires_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "replay_nonce_pkey" PRIMARY KEY ("namespace","nonce")
);

-- CreateTable
CREATE TABLE "revoked_credential" (
    "space" TEXT NOT NULL,
    "jti" TEXT NOT NULL,
    "expires_at" TIMESTAMP(3) NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "revoked_credential_pkey" PRIMARY KEY ("space","jti")
);

-- CreateIndex
CREATE INDEX "replay_nonce_expires_at_idx" ON "replay_nonce"("expires_at");

-- CreateIndex
CREATE INDEX "revoked_credential_expires_at_idx" ON "revoked_credential"("expires_at");

