-- CreateTable
CREATE TABLE "member_op" (
    "space" TEXT NOT NULL,
    "rev" TEXT NOT NULL,
    "op" TEXT NOT NULL,
    "did" TEXT NOT NULL,
    "read" BOOLEAN NOT NULL,
    "write" BOOLEAN NOT NULL,
    "created_at" DATETIME NOT NULL,

    PRIMARY KEY ("space", "rev")
);

-- CreateTable
CREATE TABLE "member_state" (
    "space" TEXT NOT NULL PRIMARY KEY,
    "rev" TEXT NOT NULL,
    "lthash" BLOB NOT NULL,
    "count" INTEGER NOT NULL,
    "compacted_through" TEXT,
    "updated_at" DATETIME NOT NULL
);

