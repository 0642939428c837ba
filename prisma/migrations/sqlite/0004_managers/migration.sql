-- CreateTable
CREATE TABLE "authority_manager" (
    "authority_did" TEXT NOT NULL,
    "did" TEXT NOT NULL,
    "role" TEXT NOT NULL,
    "created_at" DATETIME NOT NULL,

    PRIMARY KEY ("authority_did", "did")
);

-- CreateIndex
CREATE INDEX "authority_manager_did_idx" ON "authority_manager"("did");

